/*
 * The pod sandbox's process for the local node's containerd (localhost/pause:bbconn), in the
 * manner of Kubernetes' build/pause/linux/pause.c: the registry.k8s.io/pause image cannot be
 * pulled here. As PID 1 of the pod it must outlive everything, reap the orphans the kernel
 * hands it (or they stay zombies), and stop promptly and cleanly when the runtime asks.
 * Built static (gcc -static -Os) so the image needs nothing but this file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Only async-signal-safe calls in the handlers (write, _exit, waitpid). */
static void on_stop(int sig)
{
    static const char msg[] = "pause: stopping\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("pause (bbconn)");
        return 0;
    }
    if (getpid() != 1)
        fprintf(stderr, "pause: not PID 1, orphans will not be reaped here\n");

    struct sigaction stop = { .sa_handler = on_stop };
    sigemptyset(&stop.sa_mask);
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    /* SA_NOCLDSTOP: only exits matter, not children being stopped or continued. */
    struct sigaction child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART };
    sigemptyset(&child.sa_mask);
    if (sigaction(SIGCHLD, &child, NULL) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;)
        pause();
}
