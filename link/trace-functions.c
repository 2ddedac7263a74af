/* Which of a program's functions run, in the order they first run: the
 * training half of link/order-symbols.py. Each function entry listed
 * gets a one-shot breakpoint (int3); its first hit is written out and the
 * original byte put back, so a function costs one trap whatever it does
 * afterwards and the program runs at nearly full speed (a VM boots).
 *
 *   trace-functions OUT ENTRIES PROGRAM [ARG...]
 *
 * ENTRIES: one hexadecimal link-time address per line (nm's), ascending,
 * of functions in PROGRAM, a position-independent executable. OUT gets
 * the address of each function hit, one per line, as it is first hit.
 * Every thread is followed; killing the tracer kills the program. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct entry {
	uint64_t addr;		/* link-time */
	uint8_t orig;
	int hit;
};

static int read_entries(const char *path, struct entry **out, size_t *count)
{
	FILE *f = fopen(path, "r");
	size_t n = 0, cap = 0;
	struct entry *v = NULL;
	char line[64];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return -1;
		}
		v[n++] = (struct entry){ .addr = strtoull(line, NULL, 16) };
	}
	fclose(f);
	*out = v;
	*count = n;
	return 0;
}

/* The executable's load address: the lowest mapping of its file. */
static uint64_t load_base(pid_t pid, const char *program)
{
	char maps[64], line[PATH_MAX + 128], real[PATH_MAX];
	uint64_t base = UINT64_MAX;
	FILE *f;

	if (!realpath(program, real))
		return UINT64_MAX;
	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "r");
	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		uint64_t start = strtoull(line, NULL, 16);

		if (path) {
			path[strcspn(path, "\n")] = 0;
			if (!strcmp(path, real) && start < base)
				base = start;
		}
	}
	fclose(f);
	return base;
}

/* Sets byte `addr` of the stopped thread's memory to `value`; returns the
 * byte it held, or -1. */
static int poke_byte(pid_t pid, uint64_t addr, uint8_t value)
{
	long word;
	uint8_t old;

	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, NULL);
	if (errno)
		return -1;
	old = (uint8_t)word;
	word = (word & ~0xffL) | value;
	if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)word) < 0)
		return -1;
	return old;
}

static struct entry *find(struct entry *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].addr == addr)
			return &v[mid];
		if (v[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct entry *entries;
	size_t count, armed = 0;
	uint64_t base;
	FILE *out;
	pid_t child;
	int status;

	if (argc < 4) {
		fprintf(stderr, "usage: trace-functions OUT ENTRIES PROGRAM [ARG...]\n");
		return 2;
	}
	if (read_entries(argv[2], &entries, &count) < 0) {
		perror(argv[2]);
		return 1;
	}
	out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		execv(argv[3], argv + 3);
		perror(argv[3]);
		_exit(127);
	}
	/* The stop after exec: the program is mapped, none of it has run. */
	if (waitpid(child, &status, 0) < 0 || !WIFSTOPPED(status)) {
		fprintf(stderr, "trace-functions: %s did not start\n", argv[3]);
		return 1;
	}
	ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)(PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL));
	base = load_base(child, argv[3]);
	if (base == UINT64_MAX) {
		fprintf(stderr, "trace-functions: %s is not mapped in its process\n", argv[3]);
		return 1;
	}
	for (size_t i = 0; i < count; i++) {
		int old = poke_byte(child, base + entries[i].addr, 0xcc);

		if (old < 0) {
			entries[i].hit = 1;	/* not in the text: never armed */
			continue;
		}
		entries[i].orig = (uint8_t)old;
		armed++;
	}
	fprintf(stderr, "trace-functions: %zu of %zu entries armed\n", armed, count);
	ptrace(PTRACE_CONT, child, NULL, NULL);

	for (;;) {
		struct user_regs_struct regs;
		struct entry *e;
		pid_t t = waitpid(-1, &status, __WALL);
		int sig;

		if (t < 0) {
			if (errno == EINTR)
				continue;
			break;	/* ECHILD: every thread is gone */
		}
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		/* A clone event, or a new thread's first stop: nothing to pass on. */
		if (status >> 16 || sig == SIGSTOP) {
			ptrace(PTRACE_CONT, t, NULL, NULL);
			continue;
		}
		if (sig == SIGTRAP && ptrace(PTRACE_GETREGS, t, NULL, &regs) == 0 &&
		    (e = find(entries, count, regs.rip - 1 - base)) != NULL) {
			/* A second thread may trap on an entry already put back. */
			if (!e->hit) {
				poke_byte(t, base + e->addr, e->orig);
				e->hit = 1;
				fprintf(out, "%llx\n", (unsigned long long)e->addr);
				fflush(out);
			}
			regs.rip -= 1;
			ptrace(PTRACE_SETREGS, t, NULL, &regs);
			ptrace(PTRACE_CONT, t, NULL, NULL);
			continue;
		}
		ptrace(PTRACE_CONT, t, NULL, (void *)(long)sig);
	}
	fclose(out);
	return 0;
}
