/* Guest RAM over the migration stream: see vmm_migration.h. */
#include <errno.h>

#include "migration/vmm_migration.h"
#include "vm/vm_internal.h"

#define PAGE 4096ull
/* A message's runs: few enough for one sendmsg's iovec, each bounded so a
 * message never holds more than 256 MiB of pages. */
#define RUNS_PER_MESSAGE 64
#define MAX_RUN_PAGES 1024

struct run {
    uint64_t gpa, len;
};

struct batch {
    const struct vmm_mig_channel *ch;
    const struct vmm_mem_region *r;
    struct run runs[RUNS_PER_MESSAGE];
    unsigned count;
    int64_t sent;
};

static int flush(struct batch *b)
{
    if (b->count == 0)
        return 0;
    struct vmm_mig_header h = { VMM_MIG_MAGIC, VMM_MIG_MEMORY, 0 };
    struct iovec iov[1 + 2 * RUNS_PER_MESSAGE] = { { &h, sizeof(h) } };
    for (unsigned i = 0; i < b->count; i++) {
        h.length += sizeof(struct run) + b->runs[i].len;
        iov[1 + 2 * i] = (struct iovec){ &b->runs[i], sizeof(struct run) };
        iov[2 + 2 * i] = (struct iovec){ (uint8_t *)b->r->hva + (b->runs[i].gpa - b->r->gpa), b->runs[i].len };
    }
    int ret = vmm_mig_writev(b->ch, iov, 1 + 2 * (int)b->count);
    if (ret < 0)
        return ret;
    for (unsigned i = 0; i < b->count; i++)
        b->sent += (int64_t)b->runs[i].len;
    b->count = 0;
    return 0;
}

static bool selected(const struct vmm_mem_region *r, const uint64_t *bitmap, uint64_t page)
{
    if (bitmap)
        return bitmap[page / 64] & (1ull << (page % 64));
    return !vmm_page_is_zero((const uint8_t *)r->hva + page * PAGE);
}

int64_t vmm_mig_send_ram(const struct vmm_vm *vm, const struct vmm_mig_channel *ch, unsigned index,
                         const uint64_t *bitmap)
{
    if (index >= vm->nregions)
        return -EINVAL;
    struct batch b = { .ch = ch, .r = &vm->regions[index] };
    uint64_t pages = b.r->size / PAGE;
    for (uint64_t p = 0; p < pages;) {
        if (bitmap && p % 64 == 0 && bitmap[p / 64] == 0) {
            p += 64;
            continue;
        }
        if (!selected(b.r, bitmap, p)) {
            p++;
            continue;
        }
        uint64_t start = p;
        while (p < pages && p - start < MAX_RUN_PAGES && selected(b.r, bitmap, p))
            p++;
        b.runs[b.count++] = (struct run){ b.r->gpa + start * PAGE, (p - start) * PAGE };
        if (b.count == RUNS_PER_MESSAGE) {
            int ret = flush(&b);
            if (ret < 0)
                return ret;
        }
    }
    int ret = flush(&b);
    return ret < 0 ? ret : b.sent;
}

int vmm_mig_receive_ram(const struct vmm_vm *vm, const struct vmm_mig_channel *ch, uint64_t length)
{
    for (uint64_t done = 0; done < length;) {
        struct run run;
        if (length - done < sizeof(run))
            return -EPROTO;
        int ret = vmm_mig_read(ch, &run, sizeof(run));
        if (ret < 0)
            return ret;
        done += sizeof(run);
        if (run.len == 0 || run.len > length - done || ((run.gpa | run.len) & (PAGE - 1)))
            return -EPROTO;
        void *hva = vmm_memory_hva(vm, run.gpa, run.len);
        if (!hva)
            return -EPROTO;
        ret = vmm_mig_read(ch, hva, (size_t)run.len);
        if (ret < 0)
            return ret;
        done += run.len;
    }
    return 0;
}
