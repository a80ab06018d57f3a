/*
 * Harness platform for Linux user mode (Raspberry Pi OS builds under
 * qemu-aarch64 / qemu-arm): stdio files in the working directory.  qemu-user
 * has no instruction counter (that needs TCG plugins, which Debian's QEMU 7.2
 * does not ship), so ticks are 0 and nothing is timed here; the two
 * plat_ticks() calls around the timed invoke are what runtime.emulation.a_class
 * finds in qemu's single-step trace to count it (keep them out of line).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

enum { MAX_FILES = 8 };
static FILE *files[MAX_FILES];

int32_t plat_open(const char *name, int32_t for_write) {
    for (int32_t i = 0; i < MAX_FILES; ++i) {
        if (!files[i]) {
            files[i] = fopen(name, for_write ? "wb" : "rb");
            return files[i] ? i : -1;
        }
    }
    return -1;
}

uint32_t plat_read(int32_t handle, void *buf, uint32_t n) {
    return (uint32_t)fread(buf, 1, n, files[handle]);
}

int32_t plat_write(int32_t handle, const void *buf, uint32_t n) {
    return fwrite(buf, 1, n, files[handle]) == n ? 0 : -1;
}

void plat_close(int32_t handle) {
    fclose(files[handle]);
    files[handle] = 0;
}

uint64_t plat_ticks(void) {
    return 0;
}

char *plat_calibration(char *p) {
    return harness_put_str(p, " counter=none");
}

uintptr_t plat_stack_paint(void) {
    return 0;
}

uint32_t plat_stack_used(uintptr_t base) {
    (void)base;
    return 0;
}

void plat_fail(const char *message) {
    fprintf(stderr, "%s\n", message);
    exit(2);
}

int main(void) {
    return harness_main();
}
