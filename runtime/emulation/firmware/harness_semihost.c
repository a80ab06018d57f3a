/*
 * Harness platform for Cortex-M under qemu-system-arm -semihosting -icount
 * shift=0: files through Arm semihosting, SysTick as the instruction clock,
 * stack painting for the high-water mark.
 *
 * With -icount shift=0 QEMU advances virtual time 1 ns per instruction, and
 * SysTick counts the CPU clock of the MPS2/MPS3 machine (25 MHz on AN385/
 * AN386/AN500): one tick per 40 instructions there.  The ratio is measured
 * here, not assumed: plat_calibration() times a loop of known length.
 */
#include "harness.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
/* The reload value: the full 24 bits (a wrap every 2^24 ticks), or smaller
 * to exercise the wrap counting (tests/emulation). */
#ifndef HARNESS_SYST_RELOAD
#define HARNESS_SYST_RELOAD 0x00FFFFFFu
#endif

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_EXIT_EXTENDED = 0x20
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define STACK_PAINT 0xC5A5C5A5u

static volatile uint32_t systick_wraps;
static uint64_t last_ticks;

static int32_t semihost(int32_t op, const void *arg) {
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t length(const char *s) {
    uint32_t n = 0;
    while (s[n]) {
        ++n;
    }
    return n;
}

static void plat_exit(int32_t code) {
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    (void)semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

int32_t plat_open(const char *name, int32_t for_write) {
    /* modes: 1 "rb", 5 "wb" */
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, for_write ? 5u : 1u, length(name)};
    return semihost(SYS_OPEN, args);
}

uint32_t plat_read(int32_t handle, void *buf, uint32_t n) {
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, n};
    return n - (uint32_t)semihost(SYS_READ, args); /* returns bytes NOT read */
}

int32_t plat_write(int32_t handle, const void *buf, uint32_t n) {
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, n};
    return semihost(SYS_WRITE, args); /* 0: all written */
}

void plat_close(int32_t handle) {
    const uint32_t args[1] = {(uint32_t)handle};
    (void)semihost(SYS_CLOSE, args);
}

void plat_fail(const char *message) {
    (void)semihost(SYS_WRITE0, message);
    (void)semihost(SYS_WRITE0, "\n");
    plat_exit(2);
}

void SysTick_Handler(void) {
    systick_wraps = systick_wraps + 1u;
}

/* Elapsed ticks as 64 bits: the wrap count (SysTick interrupts) above the
 * 24-bit down-counter.  A wrap whose interrupt is still pending shows as a
 * time earlier than the last one; it is added here. */
uint64_t plat_ticks(void) {
    uint32_t wraps;
    uint32_t value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    const uint64_t period = (uint64_t)HARNESS_SYST_RELOAD + 1u;
    uint64_t t = (uint64_t)wraps * period + (uint64_t)(HARNESS_SYST_RELOAD - value);
    if (t < last_ticks) {
        t += period;
    }
    last_ticks = t;
    return t;
}

/* 2n + 1 instructions (subs/bne per iteration, bx) plus the call. */
__attribute__((naked, noinline)) static void spin(uint32_t n) {
    (void)n;
    __asm__ volatile(
        ".syntax unified\n"
        "1: subs r0, r0, #1\n"
        "bne 1b\n"
        "bx lr\n");
}

char *plat_calibration(char *p) {
    enum { N1 = 100000, N2 = 1100000, CALLS = 1000 };
    uint64_t t0 = plat_ticks();
    uint64_t t1 = plat_ticks();
    const uint64_t empty = t1 - t0;
    t0 = plat_ticks();
    spin(N1);
    t1 = plat_ticks();
    const uint64_t spin1 = t1 - t0;
    t0 = plat_ticks();
    spin(N2);
    t1 = plat_ticks();
    const uint64_t spin2 = t1 - t0;
    /* the cost of one TRT_STEP_HOOK: a plat_ticks() call and a store */
    t0 = plat_ticks();
    for (int32_t i = 0; i < CALLS; ++i) {
        harness_marks[0] = plat_ticks();
    }
    t1 = plat_ticks();
    p = harness_put_str(p, " empty=");
    p = harness_put_u64(p, empty);
    p = harness_put_str(p, " spin_n1=");
    p = harness_put_u64(p, N1);
    p = harness_put_str(p, " spin_t1=");
    p = harness_put_u64(p, spin1);
    p = harness_put_str(p, " spin_n2=");
    p = harness_put_u64(p, N2);
    p = harness_put_str(p, " spin_t2=");
    p = harness_put_u64(p, spin2);
    p = harness_put_str(p, " hook_calls=");
    p = harness_put_u64(p, CALLS);
    p = harness_put_str(p, " hook_t=");
    return harness_put_u64(p, t1 - t0);
}

/* Naked: no frame of its own, so the stack pointer it sees (and paints up
 * to, and returns) is the caller's.  Paints [__stack_limit, sp). */
__attribute__((naked, noinline)) uintptr_t plat_stack_paint(void) {
    __asm__ volatile(
        ".syntax unified\n"
        "ldr r0, =__stack_limit\n"
        "ldr r1, =0xC5A5C5A5\n"
        "mov r2, sp\n"
        "1: cmp r0, r2\n"
        "bhs 2f\n"
        "str r1, [r0]\n"
        "adds r0, r0, #4\n"
        "b 1b\n"
        "2: mov r0, sp\n"
        "bx lr\n"
        ".ltorg\n");
}

extern uint32_t __stack_limit[];

/* The lowest word that no longer holds the paint marks the high-water mark.
 * 0xFFFFFFFF: the paint at the very bottom is gone (the stack overflowed). */
uint32_t plat_stack_used(uintptr_t base) {
    const volatile uint32_t *w = (const volatile uint32_t *)__stack_limit;
    if (*w != STACK_PAINT) {
        return 0xFFFFFFFFu;
    }
    while ((uintptr_t)w < base && *w == STACK_PAINT) {
        ++w;
    }
    return (uint32_t)(base - (uintptr_t)w);
}

int main(void) {
    SYST_RVR = HARNESS_SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* enable, interrupt on wrap, processor clock */
    plat_exit(harness_main());
    return 0;
}
