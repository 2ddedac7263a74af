/* Register dump for fatal exits: what a developer needs to see why a guest died. */
#include <stdio.h>
#include <sys/ioctl.h>

#include "vm/vm_internal.h"

static void dump_segment(const char *name, const struct kvm_segment *s)
{
    fprintf(stderr, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u db=%u l=%u g=%u p=%u\n",
            name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
            s->db, s->l, s->g, s->present);
}

void vmm_vcpu_dump(const struct vmm_vcpu *vcpu)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
        perror("cloud-hypervisor: cannot read vCPU registers");
        return;
    }
    fprintf(stderr, "vCPU %u registers at exit reason %u:\n", vcpu->index, vcpu->run->exit_reason);
    fprintf(stderr, "  rip=%016llx rsp=%016llx rflags=%016llx\n",
            r.rip, r.rsp, r.rflags);
    fprintf(stderr, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n",
            r.rax, r.rbx, r.rcx, r.rdx);
    fprintf(stderr, "  rsi=%016llx rdi=%016llx rbp=%016llx\n", r.rsi, r.rdi, r.rbp);
    fprintf(stderr, "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n", r.r8, r.r9, r.r10, r.r11);
    fprintf(stderr, "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n", r.r12, r.r13, r.r14, r.r15);
    fprintf(stderr, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
            s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
    dump_segment("cs", &s.cs);
    dump_segment("ds", &s.ds);
    dump_segment("ss", &s.ss);
    dump_segment("tr", &s.tr);
    fprintf(stderr, "  gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n",
            (unsigned long long)s.gdt.base, s.gdt.limit, (unsigned long long)s.idt.base, s.idt.limit);
}
