/* Port I/O and MMIO buses: sorted range tables published by atomic swap.
 *
 * Writers serialize on a mutex and build a new table; readers load the
 * current table and binary-search it without a lock. A replaced table is
 * freed once no lookup can still hold it, so a guest that moves its BARs
 * for ever costs no memory: lookups are counted under the parity of an
 * epoch, and a writer flips the epoch and waits for the old parity's
 * count to drain, twice (SRCU's scheme: a lookup that read the epoch just
 * before a flip is counted under the other parity, which the second flip
 * waits for). A lookup copies the range it found and is over before the
 * device's handler runs, so no writer waits on a handler — which may
 * itself move a BAR, and write this bus. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vmm_bus.h"

struct bus_range {
    uint64_t base;
    uint64_t len;
    vmm_io_fn fn;
    void *opaque;
};

struct bus_table {
    unsigned count;
    struct bus_range ranges[];
};

struct vmm_bus {
    pthread_mutex_t lock;
    _Atomic(struct bus_table *) table;
    /* Lookups in progress, by the parity of `epoch` each one read. */
    atomic_ulong epoch;
    atomic_ulong readers[2];
};

static struct bus_table *table_alloc(unsigned count)
{
    struct bus_table *t = calloc(1, sizeof(*t) + count * sizeof(struct bus_range));
    if (t)
        t->count = count;
    return t;
}

int vmm_bus_create(struct vmm_bus **out)
{
    struct vmm_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return -ENOMEM;
    struct bus_table *t = table_alloc(0);
    if (!t) {
        free(bus);
        return -ENOMEM;
    }
    pthread_mutex_init(&bus->lock, NULL);
    atomic_init(&bus->table, t);
    *out = bus;
    return 0;
}

void vmm_bus_destroy(struct vmm_bus *bus)
{
    if (!bus)
        return;
    free(atomic_load(&bus->table));
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

/* A lookup's start: the parity it is counted under, for lookup_end. */
static unsigned long lookup_begin(struct vmm_bus *bus)
{
    unsigned long parity = atomic_load(&bus->epoch) & 1;
    atomic_fetch_add(&bus->readers[parity], 1);
    return parity;
}

static void lookup_end(struct vmm_bus *bus, unsigned long parity)
{
    atomic_fetch_sub_explicit(&bus->readers[parity], 1, memory_order_release);
}

/* Returns once no lookup that began before the call is still running. */
static void wait_for_lookups(struct vmm_bus *bus)
{
    for (int flip = 0; flip < 2; flip++) {
        unsigned long old = atomic_fetch_add(&bus->epoch, 1) & 1;
        for (unsigned spins = 0; atomic_load(&bus->readers[old]) != 0; spins++) {
            /* A lookup is a binary search: only a preempted reader takes long. */
            if (spins < 1000)
                __asm__ volatile("pause");
            else
                sched_yield();
        }
    }
}

/* Index of the last range whose base is <= addr, or -1. */
static long table_floor(const struct bus_table *t, uint64_t addr)
{
    long lo = 0, hi = (long)t->count - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (t->ranges[mid].base <= addr) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static bool table_overlaps(const struct bus_table *t, uint64_t base, uint64_t len,
                           long skip)
{
    uint64_t last = base + len - 1;
    for (unsigned i = 0; i < t->count; i++) {
        const struct bus_range *r = &t->ranges[i];
        if ((long)i != skip && r->base <= last && base <= r->base + r->len - 1)
            return true;
    }
    return false;
}

/* Publishes `next` (already sorted) and frees the table it replaces once
 * no lookup can hold it. */
static void table_publish(struct vmm_bus *bus, struct bus_table *next)
{
    struct bus_table *old = atomic_exchange(&bus->table, next);
    wait_for_lookups(bus);
    free(old);
}

/* A copy of `cur` without entry `skip` and with `add` (if any) in order. */
static struct bus_table *table_edit(const struct bus_table *cur, long skip,
                                    const struct bus_range *add)
{
    unsigned count = cur->count - (skip >= 0) + (add != NULL);
    struct bus_table *t = table_alloc(count);
    if (!t)
        return NULL;
    unsigned n = 0;
    bool added = add == NULL;
    for (unsigned i = 0; i < cur->count; i++) {
        if ((long)i == skip)
            continue;
        if (!added && add->base < cur->ranges[i].base) {
            t->ranges[n++] = *add;
            added = true;
        }
        t->ranges[n++] = cur->ranges[i];
    }
    if (!added)
        t->ranges[n++] = *add;
    return t;
}

static bool range_valid(uint64_t base, uint64_t len)
{
    return len != 0 && base + (len - 1) >= base;
}

int vmm_bus_register(struct vmm_bus *bus, uint64_t base, uint64_t len,
                     vmm_io_fn fn, void *opaque)
{
    if (!range_valid(base, len) || !fn)
        return -EINVAL;
    int ret = 0;
    pthread_mutex_lock(&bus->lock);
    const struct bus_table *cur = atomic_load_explicit(&bus->table, memory_order_relaxed);
    if (table_overlaps(cur, base, len, -1)) {
        ret = -EEXIST;
    } else {
        struct bus_range add = { base, len, fn, opaque };
        struct bus_table *next = table_edit(cur, -1, &add);
        if (next)
            table_publish(bus, next);
        else
            ret = -ENOMEM;
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

/* Index of the range starting exactly at `base`, or -1. */
static long table_find_base(const struct bus_table *t, uint64_t base)
{
    long i = table_floor(t, base);
    return (i >= 0 && t->ranges[i].base == base) ? i : -1;
}

int vmm_bus_unregister(struct vmm_bus *bus, uint64_t base)
{
    int ret = 0;
    pthread_mutex_lock(&bus->lock);
    const struct bus_table *cur = atomic_load_explicit(&bus->table, memory_order_relaxed);
    long i = table_find_base(cur, base);
    if (i < 0) {
        ret = -ENOENT;
    } else {
        struct bus_table *next = table_edit(cur, i, NULL);
        if (next)
            table_publish(bus, next);
        else
            ret = -ENOMEM;
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

int vmm_bus_move(struct vmm_bus *bus, uint64_t old_base, uint64_t new_base)
{
    int ret = 0;
    pthread_mutex_lock(&bus->lock);
    const struct bus_table *cur = atomic_load_explicit(&bus->table, memory_order_relaxed);
    long i = table_find_base(cur, old_base);
    if (i < 0) {
        ret = -ENOENT;
        goto out;
    }
    struct bus_range moved = cur->ranges[i];
    moved.base = new_base;
    if (!range_valid(new_base, moved.len)) {
        ret = -EINVAL;
    } else if (table_overlaps(cur, new_base, moved.len, i)) {
        ret = -EEXIST;
    } else {
        struct bus_table *next = table_edit(cur, i, &moved);
        if (next)
            table_publish(bus, next);
        else
            ret = -ENOMEM;
    }
out:
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

bool vmm_bus_dispatch(struct vmm_bus *bus, uint64_t addr, uint8_t *data,
                      uint32_t size, bool is_write)
{
    struct bus_range hit = { 0 };
    unsigned long parity = lookup_begin(bus);
    const struct bus_table *t = atomic_load(&bus->table);
    long i = table_floor(t, addr);
    if (i >= 0 && size != 0) {
        const struct bus_range *r = &t->ranges[i];
        uint64_t offset = addr - r->base;
        if (offset < r->len && size <= r->len - offset)
            hit = *r;
    }
    lookup_end(bus, parity);
    if (hit.fn) {
        hit.fn(hit.opaque, addr - hit.base, data, size, is_write);
        return true;
    }
    if (!is_write)
        memset(data, 0xff, size);
    return false;
}

unsigned vmm_bus_count(struct vmm_bus *bus)
{
    unsigned long parity = lookup_begin(bus);
    unsigned count = atomic_load(&bus->table)->count;
    lookup_end(bus, parity);
    return count;
}
