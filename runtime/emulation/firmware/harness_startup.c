/*
 * Minimal Cortex-M startup for the emulation firmware: the vector table, a
 * reset handler that enables the FPU (when the build uses one), copies .data,
 * zeroes .bss, and a fault handler that reports through semihosting.
 */
#include <stdint.h>

extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __hbss_start[], __hbss_end[];

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void SysTick_Handler(void);

typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used)) const vector harness_vectors[16] = {
    (vector)(uintptr_t)__stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    SysTick_Handler,
};

static void zero(uint32_t *from, uint32_t *to) {
    for (volatile uint32_t *w = from; w < to; ++w) {
        *w = 0;
    }
}

void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU, and MVE on v8.1-M) before any
     * floating-point instruction runs. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    const volatile uint32_t *src = __data_load;
    for (volatile uint32_t *dst = __data_start; dst < __data_end; ++dst) {
        *dst = *src++;
    }
    zero(__bss_start, __bss_end);
    zero(__hbss_start, __hbss_end);
    (void)main();
    for (;;) {
    }
}

void Fault_Handler(void) {
    /* SYS_WRITE0 then SYS_EXIT_EXTENDED with code 3 */
    static const uint32_t block[2] = {0x20026u, 3u};
    register uint32_t r0 __asm__("r0") = 0x04u;
    register const void *r1 __asm__("r1") = "harness: fault exception (HardFault or similar)\n";
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    r0 = 0x20u;
    r1 = block;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
