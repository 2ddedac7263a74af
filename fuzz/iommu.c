/* libFuzzer target: the virtual IOMMU's domains and mappings under any
 * sequence of the guest's requests and device accesses. Input: records of
 * 16 bytes — an operation (attach, detach, map, unmap, translate), a
 * domain, an endpoint and addresses drawn from the record — against four
 * virtio endpoints and 1 MiB of RAM. After each record every domain must
 * hold sorted, disjoint mappings of RAM whose bytes it counts right, within
 * the bounds; every translation must land in RAM inside a mapping that
 * allows the access. ASan and UBSan watch the rest. */
#include <linux/virtio_iommu.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"

#define RAM_SIZE (1u << 20)
#define ENDPOINTS 4

static uint64_t get(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void check(const struct vmm_iommu *m)
{
    uint32_t total = 0;
    for (unsigned d = 0; d < m->ndomains; d++) {
        const struct iommu_domain *dom = m->domains[d];
        uint64_t bytes = 0;
        if (dom->endpoints == 0 || dom->count > VMM_IOMMU_MAX_MAPPINGS)
            abort();
        for (uint32_t i = 0; i < dom->count; i++) {
            const struct iommu_mapping *mp = &dom->maps[i];
            if (mp->last < mp->iova || (i && dom->maps[i - 1].last >= mp->iova))
                abort();
            if (mp->gpa + (mp->last - mp->iova) >= RAM_SIZE)
                abort();
            bytes += mp->last - mp->iova + 1;
        }
        if (bytes != dom->bytes || bytes > RAM_SIZE || dom->count > dom->cap)
            abort();
        total += dom->count;
    }
    if (total != m->mappings || total > VMM_IOMMU_MAX_TOTAL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram;
    if (!ram)
        ram = aligned_alloc(4096, RAM_SIZE);
    struct vmm_mem_region region = { .gpa = 0, .size = RAM_SIZE, .hva = ram, .slot = 0, .fd = -1 };
    struct vmm_gmem mem = { &region, 1, NULL, NULL, NULL };
    struct vmm_iommu m;
    memset(&m, 0, sizeof(m));
    int kick = eventfd(0, EFD_NONBLOCK);
    if (kick < 0 || iommu_init(&m, &mem, 48, kick) < 0)
        abort();
    struct vmm_iommu_endpoint *eps[ENDPOINTS];
    for (unsigned i = 0; i < ENDPOINTS; i++)
        if (iommu_endpoint_add(&m, 8 * (i + 1), -1, &eps[i]) < 0)
            abort();
    for (size_t at = 0; at + 16 <= size; at += 16) {
        const uint8_t *r = data + at;
        uint32_t domain = r[1] & 7, endpoint = 8 * (1 + (r[2] & 3)) + (r[2] >> 7);
        /* Page-aligned mostly, anything sometimes: the checks must hold. */
        uint64_t first = r[0] & 0x80 ? get(r + 3, 5) : get(r + 3, 3) << 12;
        uint64_t len = r[0] & 0x40 ? get(r + 8, 3) : (get(r + 8, 1) + 1) << 12;
        uint64_t gpa = r[0] & 0x20 ? get(r + 11, 4) : get(r + 11, 2) << 12;
        switch (r[0] & 7) {
        case 0: iommu_attach(&m, domain, endpoint); break;
        case 1: iommu_detach(&m, domain, endpoint); break;
        case 2: case 3: iommu_map(&m, domain, first, first + len - 1, gpa, r[15] & 7); break;
        case 4: iommu_unmap(&m, domain, first, first + len - 1); break;
        default: {
            const struct vmm_iommu_endpoint *ep = eps[r[2] & 3];
            uint64_t out, got;
            bool write = r[15] & 1;
            if (vmm_iommu_translate(ep, first, len, write, &out, &got) == 0) {
                if (got == 0 || got > len || out + got > RAM_SIZE)
                    abort();
                uint32_t i = 0;
                while (i < ep->domain->count && ep->domain->maps[i].last < first)
                    i++;
                if (i == ep->domain->count || ep->domain->maps[i].iova > first ||
                    !(ep->domain->maps[i].flags & (write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ)))
                    abort();
            }
            struct iommu_fault f;
            while (iommu_take_fault(&m, &f))
                ;
        }
        }
        check(&m);
    }
    for (unsigned i = 0; i < ENDPOINTS; i++)
        vmm_iommu_endpoint_remove(eps[i]);
    if (m.ndomains)
        abort(); /* a domain outlived its last endpoint */
    iommu_destroy(&m);
    close(kick);
    return 0;
}
