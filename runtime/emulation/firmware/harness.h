/*
 * harness.h - the emulation test harness (firmware and Linux driver).
 *
 * harness_core.c is the same on every target: it reads records from
 * tinyrt_in.bin, runs the exported model each names, writes the outputs to
 * tinyrt_out.bin and one report line per record to tinyrt_report.txt.
 * A platform file provides file I/O, a tick counter and stack painting:
 * harness_semihost.c (Cortex-M under qemu-system-arm, Arm semihosting) or
 * harness_linux.c (stdio, under qemu-user).
 *
 *   tinyrt_in.bin   records: u32 model index (little endian), then the
 *                   model's input tensors' bytes, back to back
 *   tinyrt_out.bin  per record: the output tensors' bytes, back to back
 *
 * Not part of an exported model: a firmware project has its own main().
 */
#ifndef TRT_HARNESS_H
#define TRT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

enum { HARNESS_MAX_IO = 16 };

typedef struct {
    const char *name;
    int (*invoke)(const void *const *inputs, void *const *outputs);
    int32_t num_inputs;
    const uint32_t *input_bytes;
    int32_t num_outputs;
    const uint32_t *output_bytes;
    int32_t num_steps;
} harness_model;

/* harness_models.c (generated per build) */
extern const harness_model harness_models[];
extern const int32_t harness_num_models;
extern uint8_t harness_in[];
extern uint8_t harness_out[];
extern const uint32_t harness_in_capacity;
extern const uint32_t harness_out_capacity;
/* TRT_STEP_HOOK writes plat_ticks() here: one entry per step and one more */
extern uint64_t harness_marks[];

/* platform */
int32_t plat_open(const char *name, int32_t for_write); /* -1 on failure */
uint32_t plat_read(int32_t handle, void *buf, uint32_t n); /* bytes read */
int32_t plat_write(int32_t handle, const void *buf, uint32_t n); /* 0 ok */
void plat_close(int32_t handle);
/* A free-running count (SysTick ticks under -icount), 0 when there is none. */
uint64_t plat_ticks(void);
/* Appends the platform's calibration fields to a report line. */
char *plat_calibration(char *p);
/* Paints the free stack below the caller's stack pointer and returns that
 * pointer; plat_stack_used() then gives how many bytes below it were
 * written.  Call both from the same function.  0 / 0 when unsupported. */
uintptr_t plat_stack_paint(void);
uint32_t plat_stack_used(uintptr_t base);
/* ISA tables to run each record under (the first one's outputs are kept). */
int32_t plat_isas(int32_t *isas, int32_t max);
void plat_fail(const char *message);

int harness_main(void);

/* report formatting */
char *harness_put_str(char *p, const char *s);
char *harness_put_u64(char *p, uint64_t v);

#endif /* TRT_HARNESS_H */
