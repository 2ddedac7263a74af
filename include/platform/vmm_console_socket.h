/* A console on a UNIX socket (console_socket.c): the device writes its
 * output to one non-blocking pipe and reads its input from another; a
 * relay thread joins them to the newest client of a listening socket.
 * Nobody connected, or a client that does not read: output is dropped. */
#ifndef VMM_CONSOLE_SOCKET_H
#define VMM_CONSOLE_SOCKET_H

#include <stdbool.h>

#include "vm/vmm_vcpu.h"

struct vmm_console_socket;

/* `listen_fd` is a listening UNIX stream socket, not owned; `name` the
 * relay thread's (at most 15 characters). */
int vmm_console_socket_create(int listen_fd, const char *name, struct vmm_console_socket **out);
/* Where the device writes its output and reads its input (owned here). */
int vmm_console_socket_output_fd(const struct vmm_console_socket *c);
int vmm_console_socket_input_fd(const struct vmm_console_socket *c);
/* Starts the relay; it calls `init` (its seccomp filter) first. */
int vmm_console_socket_start(struct vmm_console_socket *c, vmm_vcpu_thread_init_fn init, void *opaque);
/* Stops and joins the relay, closes the pipes and the client. */
void vmm_console_socket_destroy(struct vmm_console_socket *c);

#endif
