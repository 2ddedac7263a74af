/* libFuzzer target: the split-virtqueue walker against guest memory the
 * fuzzer writes. Input: byte 0 picks the queue size and event idx, the
 * rest fills guest RAM from address 0 (descriptor table at 0, avail ring
 * at 0x1000, used ring at 0x2000, buffers anywhere). Every buffer a chain
 * yields must lie inside RAM; ASan and UBSan watch the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vmm_virtq.h"

#define RAM_SIZE 0x10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram;
    static struct vmm_virtq_chain chain;
    if (!ram)
        ram = aligned_alloc(4096, RAM_SIZE);
    if (size < 1)
        return 0;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + 1, size - 1 < RAM_SIZE ? size - 1 : RAM_SIZE);
    struct vmm_mem_region region = { .gpa = 0, .size = RAM_SIZE, .hva = ram, .slot = 0, .fd = -1 };
    struct vmm_gmem mem = { &region, 1, NULL, NULL, NULL };
    struct vmm_virtq q;
    uint16_t qsize = (uint16_t)(1u << (data[0] & 7)); /* 1..128 */
    if (vmm_virtq_init(&q, &mem, qsize, 0, 0x1000, 0x2000, data[0] & 0x80) < 0)
        return 0;
    for (int round = 0; round < 2 * qsize + 2; round++) {
        int r = vmm_virtq_pop(&q, &mem, &chain);
        if (r <= 0)
            break;
        uint64_t total = 0;
        for (unsigned i = 0; i < chain.count; i++) {
            const struct vmm_virtq_buf *b = &chain.bufs[i];
            if (b->len && (b->hva < ram || b->hva + b->len > ram + RAM_SIZE))
                abort();
            total += b->len;
        }
        if (total != chain.readable + chain.writable)
            abort();
        uint8_t scratch[64];
        vmm_virtq_read(&chain, 1, scratch, sizeof(scratch));
        vmm_virtq_write(&chain, 1, scratch, sizeof(scratch));
        struct iovec iov[8];
        vmm_virtq_iov(&chain, true, 0, chain.writable, iov, 8);
        vmm_virtq_push(&q, chain.head, 1);
        vmm_virtq_should_signal(&q);
    }
    vmm_virtq_rearm(&q);
    return 0;
}
