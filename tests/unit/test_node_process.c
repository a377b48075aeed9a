/*
 * test_node_process.c -- the real quiverd binary (build/bin/quiverd, next to
 * this test's build directory) started on random free 127.0.0.1 ports with
 * a fresh data directory, driven over RESP: a write through raft, a read
 * from a reader thread, INFO raft, a protocol error, a clean SIGTERM
 * shutdown (exit 0), a restart that still has the data, and bad flags
 * (exit 2).
 *
 * Skipped when the binary has not been built (the unit-test target does
 * not depend on it).  Waits are for a condition with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 20000

static char quiverd_path[PATH_MAX];
static pid_t child_pid; /* killed by teardown if a test fails with it running */
static char data_dir[PATH_MAX];

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A port the kernel just handed out (free at that instant). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct proc {
    pid_t pid;
    int out_fd; /* its stdout */
    int port;
    int admin_port;
} proc;

/* Start quiverd; wait for "quiverd ready on port N". */
static void start(proc *p) {
    p->port = free_port();
    int raft_port = free_port();
    p->admin_port = free_port();
    char port_s[16], raft_s[64], admin_s[16];
    snprintf(port_s, sizeof(port_s), "%d", p->port);
    snprintf(admin_s, sizeof(admin_s), "%d", p->admin_port);
    snprintf(raft_s, sizeof(raft_s), "127.0.0.1:%d", raft_port);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        char log[PATH_MAX + 16];
        snprintf(log, sizeof(log), "%s.log", data_dir);
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (logfd >= 0) dup2(logfd, 2);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(quiverd_path, "quiverd", "--data-dir", data_dir, "--port", port_s, "--raft-address", raft_s,
              "--election-timeout-ms", "200", "--heartbeat-timeout-ms", "20", "--admin-port", admin_s, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    child_pid = p->pid;
    p->out_fd = pipefd[0];
    char buf[256] = {0};
    size_t have = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (strstr(buf, "ready on port") == NULL || strchr(buf, '\n') == NULL) {
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) fail_msg("quiverd did not become ready; output: %s", buf);
        ssize_t n = read(p->out_fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0) fail_msg("quiverd exited before ready; output: %s", buf);
        have += (size_t)n;
    }
    char want[64];
    snprintf(want, sizeof(want), "quiverd ready on port %d\n", p->port);
    assert_non_null(strstr(buf, want));
}

static int stop(proc *p) {
    kill(p->pid, SIGTERM);
    int status = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) break;
        if (now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            fail_msg("quiverd did not stop on SIGTERM");
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* polling the child's exit, bounded by the deadline */
    }
    close(p->out_fd);
    child_pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_str(int fd, const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

/* Read until `until` appears in what was received (deadline); returns it. */
static char *read_until(int fd, const char *until) {
    static char buf[65536];
    size_t have = 0;
    buf[0] = '\0';
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (strstr(buf, until) == NULL) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) fail_msg("timeout waiting for '%s'; got: %s", until, buf);
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0) fail_msg("connection closed waiting for '%s'; got: %s", until, buf);
        have += (size_t)n;
        buf[have] = '\0';
    }
    return buf;
}

static int setup(void **state) {
    (void)state;
    const char *tmp = getenv("QUIVER_TEST_TMP");
    if (tmp == NULL) tmp = "/tmp";
    mkdir(tmp, 0755);
    snprintf(quiverd_path, sizeof(quiverd_path), "%s/../bin/quiverd", tmp);
    snprintf(data_dir, sizeof(data_dir), "%s/node_process_%d", tmp, (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
        child_pid = 0;
    }
    return 0;
}

static void rm_rf(const char *path) {
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
}

static void test_quiverd_end_to_end(void **state) {
    (void)state;
    if (access(quiverd_path, X_OK) != 0) {
        print_message("skipped: %s not built\n", quiverd_path);
        skip();
    }
    rm_rf(data_dir);
    proc p;
    start(&p);
    int fd = connect_to(p.port);

    send_str(fd, "PING\r\n");
    read_until(fd, "+PONG\r\n");

    send_str(fd, "GRAPH.QUERY g \"CREATE (:P {v:1})\"\r\n");
    char *r = read_until(fd, "milliseconds\r\n");
    assert_non_null(strstr(r, "Nodes created: 1"));
    assert_non_null(strstr(r, "Labels added: 1"));

    send_str(fd, "GRAPH.QUERY g \"MATCH (n:P) RETURN n.v AS v\"\r\n");
    r = read_until(fd, "milliseconds\r\n");
    assert_non_null(strstr(r, "$1\r\nv\r\n*1\r\n*1\r\n:1\r\n"));

    send_str(fd, "INFO raft\r\n");
    r = read_until(fd, "raft_peers:1\r\n");
    assert_non_null(strstr(r, "raft_last_applied_index:"));
    assert_non_null(strstr(r, "raft_role:leader\r\n"));

    send_str(fd, "GRAPH.RO_QUERY g \"CREATE (:Q)\"\r\n");
    read_until(fd, "-graph.RO_QUERY is to be executed only on read-only queries\r\n");

    send_str(fd, "*1\r\n*1\r\n");
    read_until(fd, "-ERR Protocol error: expected '$', got '*'\r\n");
    close(fd);

    /* The admin HTTP port. */
    fd = connect_to(p.admin_port);
    send_str(fd, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_until(fd, "}\n");
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "\"role\":\"leader\""));
    assert_non_null(strstr(r, "\"ready\":true"));
    close(fd);
    fd = connect_to(p.admin_port);
    send_str(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    r = read_until(fd, "quiver_uptime_seconds ");
    assert_non_null(strstr(r, "quiver_raft_leader 1\n"));
    close(fd);
    fd = connect_to(p.admin_port);
    send_str(fd, "GET /nope HTTP/1.0\r\n\r\n");
    read_until(fd, "HTTP/1.1 404 Not Found\r\n");
    close(fd);

    assert_int_equal(stop(&p), 0);

    /* Restart: the node is still there. */
    start(&p);
    fd = connect_to(p.port);
    send_str(fd, "GRAPH.QUERY g \"MATCH (n:P) RETURN n.v AS v\"\r\n");
    r = read_until(fd, "milliseconds\r\n");
    assert_non_null(strstr(r, "*1\r\n*1\r\n:1\r\n"));
    send_str(fd, "GRAPH.DELETE g\r\nGRAPH.LIST\r\n");
    r = read_until(fd, "*0\r\n");
    assert_non_null(strstr(r, "Graph removed, internal execution time: "));
    close(fd);
    assert_int_equal(stop(&p), 0);
    rm_rf(data_dir);
    char log[PATH_MAX + 16];
    snprintf(log, sizeof(log), "%s.log", data_dir);
    unlink(log);
}

static void test_quiverd_bad_flags(void **state) {
    (void)state;
    if (access(quiverd_path, X_OK) != 0) skip();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(quiverd_path, "quiverd", "--no-such-flag", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiverd_end_to_end),
        cmocka_unit_test(test_quiverd_bad_flags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
