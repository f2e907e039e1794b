/*
 * idp-sandbox-exec: how the executor worker starts a command.
 *
 *   idp-sandbox-exec --cpu=S --as=B --nproc=N --fsize=B --nofile=N [--uid=U --spare-uid=K]
 *                    -- PATH ARG...
 *
 * Sets the run's resource limits (CPU soft S and hard S+1 seconds, so SIGXCPU comes before
 * SIGKILL; address space, processes, file size, open files; no core dumps, no POSIX
 * message queues), forbids any gain of privileges (setuid programs stay unprivileged), then
 * forks: the child switches to uid and gid U with no supplementary groups when --uid is
 * given and execs PATH with the environment it was given. This process keeps the worker's
 * uid, so the command can neither stop nor kill it (a command that stopped it ran on after
 * a kill -9 of the worker), and stays as its parent until it exits, to end the whole run
 * with the worker (a command nothing times out, cancels or reads any more would
 * run on, and its run, declared lost, may be run again). The kernel's parent-death signal
 * reaches one process only: given to the command alone, what the command had started
 * (`sh script` running `sleep`, `timeout`'s child) ran on after a kill -9 of the worker.
 * Here it wakes this process, which kills every process of the run's uid (or, with no uid
 * of its own, its process group) and exits. It kills them with real and saved uid K (a uid
 * no process holds) and effective uid U: holding U as its real or saved uid would let the
 * command kill or stop it between the switch and the kill, and run on. Otherwise it exits as the command did (its
 * status, or its signal raised again). Every limit is required, so a run cannot start
 * unbounded by mistake.
 *
 * It does what util-linux's `prlimit ... -- setpriv ... --` did, in one small static exec
 * instead of two dynamically linked ones: measured 1.1 ms instead of 2.6 ms of CPU per run.
 * Staying as the command's parent costs a fork: about 0.07 ms of CPU per run more.
 * A failure before the exec prints the step and exits 126 (127 when PATH does not exist).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "idp-sandbox-exec"

enum { CPU, AS, NPROC, FSIZE, NOFILE, UID, SPARE_UID, OPTIONS };

static _Noreturn void refuse(const char *message, const char *detail) {
    fprintf(stderr, NAME ": %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    _exit(126);
}

static unsigned long long number(const char *option, const char *text) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        refuse("not a number", option);
    }
    return value;
}

static void limit(int resource, rlim_t soft, rlim_t hard, const char *name) {
    struct rlimit value = {.rlim_cur = soft, .rlim_max = hard};
    if (setrlimit(resource, &value) != 0) {
        refuse(name, strerror(errno));
    }
}

/* What the kernel sends this process when the worker dies (PR_SET_PDEATHSIG). */
#define WORKER_GONE SIGTERM

/* Wait for the command; end the whole run if the worker dies first. uid: the run's own,
   or 0 when it has none (this process then shares the worker's user). */
static _Noreturn void supervise(pid_t command, const sigset_t *watched, uid_t uid, uid_t spare) {
    for (;;) {
        int signal_number = sigwaitinfo(watched, NULL);
        if (signal_number == WORKER_GONE) {
            /* kill(-1) with the run's uid as the effective one reaches every process of it
               (and of the spare uid: none); without one, it would reach every process of the
               worker's user. */
            if (uid != 0 && setresuid(spare, uid, spare) == 0) {
                kill(-1, SIGKILL);
            }
            kill(0, SIGKILL);
            _exit(137);
        }
        int status;
        pid_t ended = waitpid(command, &status, WNOHANG);
        if (ended == command) {
            if (WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                sigset_t all;
                sigfillset(&all);
                sigprocmask(SIG_UNBLOCK, &all, NULL);
                raise(WTERMSIG(status));
                _exit(128 + WTERMSIG(status));
            }
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
        }
    }
}

int main(int argc, char **argv) {
    pid_t worker = getppid();
    static const struct option options[] = {
        {"cpu", required_argument, NULL, CPU},     {"as", required_argument, NULL, AS},
        {"nproc", required_argument, NULL, NPROC}, {"fsize", required_argument, NULL, FSIZE},
        {"nofile", required_argument, NULL, NOFILE}, {"uid", required_argument, NULL, UID},
        {"spare-uid", required_argument, NULL, SPARE_UID},
        {NULL, 0, NULL, 0},
    };
    unsigned long long value[OPTIONS];
    int given[OPTIONS] = {0};
    int option;
    while ((option = getopt_long(argc, argv, "+", options, NULL)) != -1) {
        if (option < 0 || option >= OPTIONS) {
            refuse("usage: " NAME " --cpu=S --as=B --nproc=N --fsize=B --nofile=N"
                   " [--uid=U --spare-uid=K] -- PATH ARG...", NULL);
        }
        value[option] = number(options[option].name, optarg);
        given[option] = 1;
    }
    for (int required = CPU; required <= NOFILE; required++) {
        if (!given[required]) {
            refuse("missing limit", options[required].name);
        }
    }
    if (optind >= argc) {
        refuse("no command given", NULL);
    }

    limit(RLIMIT_CPU, value[CPU], value[CPU] + 1, "cpu");
    limit(RLIMIT_AS, value[AS], value[AS], "as");
    limit(RLIMIT_NPROC, value[NPROC], value[NPROC], "nproc");
    limit(RLIMIT_FSIZE, value[FSIZE], value[FSIZE], "fsize");
    limit(RLIMIT_NOFILE, value[NOFILE], value[NOFILE], "nofile");
    limit(RLIMIT_CORE, 0, 0, "core");
    /* No POSIX message queue: one outlives every process, cannot be listed without the
       mqueue filesystem mounted, and another run (another tenant's) could open it. */
    limit(RLIMIT_MSGQUEUE, 0, 0, "msgqueue");
    uid_t uid = given[UID] ? (uid_t)value[UID] : 0;
    uid_t spare = given[SPARE_UID] ? (uid_t)value[SPARE_UID] : 0;
    if (given[UID] && uid == 0) {
        refuse("a run never gets uid 0", NULL);
    }
    if (given[UID] != given[SPARE_UID] || (given[UID] && (spare == 0 || spare == uid))) {
        refuse("--uid needs --spare-uid, another uid than 0 or the run's", NULL);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        refuse("no_new_privs", strerror(errno));
    }
    /* Blocked here, so none is missed; the child unblocks them before its exec. */
    sigset_t watched, before;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    sigaddset(&watched, WORKER_GONE);
    if (sigprocmask(SIG_BLOCK, &watched, &before) != 0) {
        refuse("sigprocmask", strerror(errno));
    }
    /* The worker may have died before. */
    if (prctl(PR_SET_PDEATHSIG, WORKER_GONE, 0, 0, 0) != 0) {
        refuse("pdeathsig", strerror(errno));
    }
    if (getppid() != worker) {
        refuse("the worker is gone", NULL);
    }
    pid_t supervisor = getpid();
    pid_t command = fork();
    if (command < 0) {
        refuse("fork", strerror(errno));
    }
    if (command == 0) {
        /* Only the command takes the run's uid: this process keeps the worker's, so the
           command cannot stop or kill it (a command that stopped it ran on after the
           worker's kill -9, as did what it started once it had killed it). */
        if (uid != 0 && (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
                         setresuid(uid, uid, uid) != 0)) {
            refuse("switching to the run's uid", strerror(errno));
        }
        /* After the switch of uid, which clears it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != supervisor) {
            _exit(126);
        }
        sigprocmask(SIG_SETMASK, &before, NULL);
        execv(argv[optind], &argv[optind]);
        int error = errno;
        fprintf(stderr, NAME ": %s: %s\n", argv[optind], strerror(error));
        _exit(error == ENOENT ? 127 : 126);
    }
    supervise(command, &watched, uid, spare);
}
