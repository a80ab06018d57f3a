/*
 * The harness loop, the same on every target (see harness.h for the file
 * protocol).  Each record runs once under the best ISA table (that run is
 * timed, its stack measured, its outputs written) and again under every
 * other table the target has; the report says whether they all agreed.
 *
 * No C library here beyond what the platform file uses, so the firmware's
 * flash figures are the model's and the kernels' (the linker script keeps
 * harness_*.o out of .text/.rodata).
 */
#include "harness.h"

#include "tinyrt.h"

static char line[1024];

char *harness_put_str(char *p, const char *s) {
    while (*s) {
        *p++ = *s++;
    }
    *p = 0;
    return p;
}

char *harness_put_u64(char *p, uint64_t v) {
    char digits[21];
    int32_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) {
        *p++ = digits[--n];
    }
    *p = 0;
    return p;
}

/* Writes the line out when it is nearly full, so a report line can hold
 * any number of per-step marks. */
static char *flush_if_full(int32_t report, char *p) {
    if (p - line > (ptrdiff_t)(sizeof(line) - 64)) {
        (void)plat_write(report, line, (uint32_t)(p - line));
        return line;
    }
    return p;
}

static uint32_t align8(uint32_t n) {
    return (n + 7u) & ~7u;
}

static int32_t same_bytes(const uint8_t *a, const uint8_t *b, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

int harness_main(void) {
    const int32_t in = plat_open("tinyrt_in.bin", 0);
    const int32_t out = plat_open("tinyrt_out.bin", 1);
    const int32_t report = plat_open("tinyrt_report.txt", 1);
    if (in < 0 || out < 0 || report < 0) {
        plat_fail("harness: cannot open tinyrt_in.bin, tinyrt_out.bin or tinyrt_report.txt");
        return 2;
    }
    char *p = harness_put_str(line, "calibration");
    p = plat_calibration(p);
    p = harness_put_str(p, "\n");
    (void)plat_write(report, line, (uint32_t)(p - line));

    /* The best table first, then the others this build has. */
    int32_t isas[4];
    int32_t num_isas = 0;
    const int32_t candidates[4] = {trt_isa_best(), TRT_ISA_PORTABLE, TRT_ISA_NEON, TRT_ISA_CORTEX_M_DSP};
    for (int32_t c = 0; c < 4; ++c) {
        int32_t seen = 0;
        for (int32_t k = 0; k < num_isas; ++k) {
            seen |= isas[k] == candidates[c];
        }
        if (!seen && trt_isa_select(candidates[c]) == candidates[c]) {
            isas[num_isas++] = candidates[c];
        }
    }

    uint32_t record = 0;
    for (;; ++record) {
        uint8_t head[4];
        const uint32_t got = plat_read(in, head, 4);
        if (got == 0) {
            break;
        }
        const uint32_t index = (uint32_t)head[0] | (uint32_t)head[1] << 8 |
                               (uint32_t)head[2] << 16 | (uint32_t)head[3] << 24;
        if (got != 4 || index >= (uint32_t)harness_num_models) {
            plat_fail("harness: bad record header in tinyrt_in.bin");
            return 2;
        }
        const harness_model *m = &harness_models[index];
        const void *inputs[HARNESS_MAX_IO];
        void *outputs[HARNESS_MAX_IO];
        void *outputs2[HARNESS_MAX_IO];
        uint32_t off = 0;
        for (int32_t k = 0; k < m->num_inputs; ++k) {
            if (plat_read(in, harness_in + off, m->input_bytes[k]) != m->input_bytes[k]) {
                plat_fail("harness: tinyrt_in.bin ends inside a record");
                return 2;
            }
            inputs[k] = harness_in + off;
            off += align8(m->input_bytes[k]);
        }
        off = 0;
        for (int32_t k = 0; k < m->num_outputs; ++k) {
            outputs[k] = harness_out + off;
            outputs2[k] = harness_out + harness_out_capacity + off;
            off += align8(m->output_bytes[k]);
        }

        (void)trt_isa_select(isas[0]);
        /* Painted, timed and measured from this one frame: see plat_stack_paint. */
        const uintptr_t base = plat_stack_paint();
        const uint64_t t0 = plat_ticks();
        (void)m->invoke(inputs, outputs);
        const uint64_t t1 = plat_ticks();
        const uint32_t stack = plat_stack_used(base);

        /* The report line up to the per-step marks now: the runs below
         * (the other ISA tables) write harness_marks too. */
        p = harness_put_str(line, "run record=");
        p = harness_put_u64(p, record);
        p = harness_put_str(p, " model=");
        p = harness_put_u64(p, index);
        p = harness_put_str(p, " t0=");
        p = harness_put_u64(p, t0);
        p = harness_put_str(p, " t1=");
        p = harness_put_u64(p, t1);
        p = harness_put_str(p, " stack=");
        p = harness_put_u64(p, stack);
        p = harness_put_str(p, " isas=");
        for (int32_t i = 0; i < num_isas; ++i) {
            p = harness_put_u64(p, (uint64_t)isas[i]);
            p = harness_put_str(p, i + 1 < num_isas ? "," : "");
        }
        p = harness_put_str(p, " marks=");
        for (int32_t s = 0; s <= m->num_steps; ++s) {
            p = harness_put_u64(p, harness_marks[s]);
            p = harness_put_str(p, s < m->num_steps ? "," : "");
            p = flush_if_full(report, p);
        }

        int32_t mismatches = 0;
        for (int32_t i = 1; i < num_isas; ++i) {
            (void)trt_isa_select(isas[i]);
            (void)m->invoke(inputs, outputs2);
            for (int32_t k = 0; k < m->num_outputs; ++k) {
                if (!same_bytes((const uint8_t *)outputs[k], (const uint8_t *)outputs2[k], m->output_bytes[k])) {
                    ++mismatches;
                }
            }
        }
        (void)trt_isa_select(isas[0]);
        for (int32_t k = 0; k < m->num_outputs; ++k) {
            if (plat_write(out, outputs[k], m->output_bytes[k]) != 0) {
                plat_fail("harness: cannot write tinyrt_out.bin");
                return 2;
            }
        }

        p = harness_put_str(p, " mismatches=");
        p = harness_put_u64(p, (uint64_t)mismatches);
        p = harness_put_str(p, "\n");
        (void)plat_write(report, line, (uint32_t)(p - line));
    }
    p = harness_put_str(line, "done records=");
    p = harness_put_u64(p, record);
    p = harness_put_str(p, "\n");
    (void)plat_write(report, line, (uint32_t)(p - line));
    plat_close(in);
    plat_close(out);
    plat_close(report);
    return 0;
}
