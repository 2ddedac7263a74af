/* Test-only bus churn; see vmm_test_hooks.h. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/vmm_bus.h"
#include "vmm_test_hooks.h"

struct churn {
    struct vmm_bus *bus;
    atomic_bool done;
    atomic_ulong lookups;
    atomic_ulong wrong;
};

static void answer(void *opaque, uint64_t offset, uint8_t *data, uint32_t size, bool is_write)
{
    (void)opaque;
    if (!is_write)
        memset(data, (int)(0x30 + offset), size);
}

/* Reads either place the range may be: one hit, the other all ones. */
static void *reader(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->done)) {
        uint8_t a = 0, b = 0;
        bool at_a = vmm_bus_dispatch(c->bus, 0x1002, &a, 1, false);
        bool at_b = vmm_bus_dispatch(c->bus, 0x2002, &b, 1, false);
        if ((at_a && a != 0x32) || (!at_a && a != 0xff) || (at_b && b != 0x32) || (!at_b && b != 0xff))
            atomic_fetch_add(&c->wrong, 1);
        atomic_fetch_add(&c->lookups, 2);
    }
    return NULL;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static int churn_child(unsigned changes, unsigned readers, struct vmm_test_bus_churn *out)
{
    struct churn c = { 0 };
    if (vmm_bus_create(&c.bus) < 0 || vmm_bus_register(c.bus, 0x1000, 0x10, answer, NULL) < 0)
        return -ENOMEM;
    for (int i = 0; i < 8; i++) /* other ranges, so each table is a real copy */
        vmm_bus_register(c.bus, 0x10000 + 0x100 * i, 0x10, answer, NULL);
    pthread_t threads[16];
    if (readers > 16)
        readers = 16;
    for (unsigned i = 0; i < readers; i++)
        pthread_create(&threads[i], NULL, reader, &c);
    out->heap_before = heap_in_use();
    for (unsigned i = 0; i < changes; i++) {
        if (i % 2 == 0)
            vmm_bus_move(c.bus, 0x1000, 0x2000);
        else
            vmm_bus_move(c.bus, 0x2000, 0x1000);
        if (i == changes / 2)
            out->heap_middle = heap_in_use();
    }
    out->heap_after = heap_in_use();
    atomic_store(&c.done, true);
    for (unsigned i = 0; i < readers; i++)
        pthread_join(threads[i], NULL);
    out->lookups = atomic_load(&c.lookups);
    out->wrong = atomic_load(&c.wrong);
    vmm_bus_destroy(c.bus);
    return 0;
}

int vmm_test_bus_churn(unsigned changes, unsigned readers, struct vmm_test_bus_churn *out)
{
    int result_pipe[2];
    if (pipe(result_pipe) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Its own process: the heap it measures is the bus's alone. */
        struct vmm_test_bus_churn result = { 0 };
        result.status = churn_child(changes, readers, &result);
        ssize_t ignored = write(result_pipe[1], &result, sizeof(result));
        (void)ignored;
        _exit(0);
    }
    close(result_pipe[1]);
    memset(out, 0, sizeof(*out));
    ssize_t n = read(result_pipe[0], out, sizeof(*out));
    close(result_pipe[0]);
    int status;
    waitpid(pid, &status, 0);
    return n == sizeof(*out) ? out->status : -EIO;
}
