/* Keeps 64 MiB of RAM changing and checks it: each sweep writes its
 * number into every page from 16 MiB to 80 MiB after checking the page
 * still holds the previous sweep's, then prints "s=<sweep in hex>". A
 * page a migration lost or sent stale prints "BAD" and stops the guest:
 * what live migration's dirty log must never let happen. */
    .code32
    .text
    .globl guest_main
guest_main:
    xor %edi, %edi
1:  inc %edi
    mov $0x1000000, %ebx
2:  lea -1(%edi), %edx
    cmp %edx, (%ebx)
    jne bad
    mov %edi, (%ebx)
    add $0x1000, %ebx
    cmp $0x5000000, %ebx
    jb 2b
    mov $s, %esi
    call puts
    mov %edi, %eax
    call puthex
    mov $'\n', %al
    call putc
    jmp 1b
bad:
    mov $b, %esi
    call puts
    mov %ebx, %eax
    call puthex
    mov $'\n', %al
    call putc
    jmp poweroff

    .section .rodata
s: .asciz "s="
b: .asciz "BAD at "

    .section .note.GNU-stack, "", @progbits
