/*
 * The lab cluster's pod sandbox process (hack/cluster/pause-image.sh): holds the pod's
 * namespaces, reaps orphans (it is PID 1 of a pod that shares its PID namespace) and exits
 * on SIGINT or SIGTERM. The same job as Kubernetes' pause image, built here so the lab needs
 * no registry.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = stop};
  struct sigaction chld = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  if (sigaction(SIGINT, &term, NULL) || sigaction(SIGTERM, &term, NULL) || sigaction(SIGCHLD, &chld, NULL))
    return 1;
  for (;;) pause();
}
