/*
 * Force-included (-include) when the firmware harness compiles an exported
 * model: its TRT_STEP_HOOK(i) records the tick count before each step and
 * after the last, which gives per-layer instruction counts.
 */
#ifndef TRT_HARNESS_HOOKS_H
#define TRT_HARNESS_HOOKS_H

#include <stdint.h>

extern uint64_t harness_marks[];
uint64_t plat_ticks(void);

#define TRT_STEP_HOOK(i) (harness_marks[(i)] = plat_ticks())

#endif /* TRT_HARNESS_HOOKS_H */
