/* The benchmark's baseline: the least a KVM program must do to run the
 * same 32-bit guest ELF (VM with irqchip and PIT, RAM, one vCPU, COM1 out,
 * power-off at port 0x600), with no configuration, devices or threads. */
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM (64ul << 20)
#define DIE(what) do { perror(what); exit(1); } while (0)

static void load(const char *path, uint8_t *ram, uint32_t *entry)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        DIE(path);
    uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED)
        DIE("mmap kernel");
    Elf32_Ehdr *eh = (Elf32_Ehdr *)file;
    for (int i = 0; i < eh->e_phnum; i++) {
        Elf32_Phdr *ph = (Elf32_Phdr *)(file + eh->e_phoff + i * eh->e_phentsize);
        if (ph->p_type == PT_LOAD && ph->p_paddr + ph->p_memsz <= RAM)
            memcpy(ram + ph->p_paddr, file + ph->p_offset, ph->p_filesz);
    }
    *entry = eh->e_entry;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
        return 2;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        DIE("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0 || ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
        DIE("create VM");
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
        DIE("KVM_CREATE_PIT2");
    uint8_t *ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region region = { .memory_size = RAM, .userspace_addr = (uintptr_t)ram };
    if (ram == MAP_FAILED || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        DIE("guest RAM");
    uint32_t entry;
    load(argv[1], ram, &entry);

    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    if (cpu < 0 || run == MAP_FAILED)
        DIE("vCPU");
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = 256;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 || ioctl(cpu, KVM_SET_CPUID2, cpuid) < 0)
        DIE("CPUID");
    struct kvm_sregs s;
    if (ioctl(cpu, KVM_GET_SREGS, &s) < 0)
        DIE("KVM_GET_SREGS");
    struct kvm_segment code = { .limit = ~0u, .selector = 8, .type = 11, .present = 1, .db = 1, .s = 1, .g = 1 };
    struct kvm_segment data = code;
    data.selector = 16;
    data.type = 3;
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.cr0 |= 1;
    struct kvm_regs r = { .rip = entry, .rflags = 2 };
    if (ioctl(cpu, KVM_SET_SREGS, &s) < 0 || ioctl(cpu, KVM_SET_REGS, &r) < 0)
        DIE("registers");

    for (;;) {
        if (ioctl(cpu, KVM_RUN, 0) < 0)
            DIE("KVM_RUN");
        if (run->exit_reason != KVM_EXIT_IO) {
            if (run->exit_reason == KVM_EXIT_MMIO)
                continue;
            fprintf(stderr, "exit reason %u\n", run->exit_reason);
            return 1;
        }
        uint8_t *d = (uint8_t *)run + run->io.data_offset;
        if (run->io.direction == KVM_EXIT_IO_IN)
            memset(d, run->io.port == 0x3fd ? 0x60 : 0xff, run->io.size);
        else if (run->io.port == 0x3f8)
            write(1, d, 1);
        else if (run->io.port == 0x600 && *d == 0x34)
            return 0;
    }
}
