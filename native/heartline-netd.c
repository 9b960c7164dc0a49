/*
 * heartline-netd: Heartline's address driver and fence (layer 2 of the fence, see docs/fence.md).
 *
 * The agent starts this program as a child with a pipe on stdin and stdout and speaks a
 * line protocol (one request per line, one reply line per request):
 *
 *   HELLO id                                   -> id OK heartline-netd <protocol> <pid> <owner-mode>
 *   ADD id ifname cidr lifetime_s deadline     -> id OK
 *   RENEW id cidr lifetime_s deadline          -> id OK
 *   DEL id cidr                                -> id OK            (absent is OK)
 *   LIST id                                    -> id OK [ifname cidr]...
 *   SWEEP id                                   -> id OK [ifname cidr]...  (what was removed)
 *   ANNOUNCE id ifname ip count interval_ms    -> id OK            (after the first packet)
 *   IFACE id ip                                -> id OK [ifname]
 *   LINK id ifname                             -> id OK up|down
 *   any failure                                -> id ERR <message>
 *
 * and writes one unsolicited line when the fence fires:  * EXPIRED ifname cidr late_ms=N
 *
 * A deadline is `@US`, an absolute time on CLOCK_MONOTONIC in microseconds (what the agent
 * sends, protocol 2: the time the request spends in the pipe and waiting for this process to
 * run does not move the deadline later; docs/adr/0040-absolute-fence-deadlines.md), or `MS`,
 * milliseconds from the moment this process reads the request (for people and scripts). An
 * absolute deadline that has passed when the request is read is refused (ADD adds nothing;
 * RENEW removes the address at once: the fence would have), and one more than a day ahead
 * is refused as not on this host's clock.
 *
 * Addresses are added through rtnetlink with a kernel lifetime (valid_lft = preferred_lft =
 * lifetime_s), the last fence layer, and with a mark in the kernel so that Heartline's
 * addresses are recognisable (LIST / SWEEP / the fence touch nothing else). The owner mode
 * (docs/adr/0013-netd-owner-mode.md) decides the mark:
 *
 *   proto     IFA_PROTO = 0x48 ('H'), kept by Linux >= 5.18;
 *   fallback  IFA_RT_PRIORITY (the metric of the address's prefix route) = 0x484C4E44
 *             ("HLND", 1212960324), kept since Linux 4.18: for 5.4-5.17 kernels, which
 *             accept IFA_PROTO and silently drop it.
 *
 * An address carrying either mark is Heartline's, whatever the mode (so a netd restarted
 * in the other mode still sweeps what the previous one left). `--owner-mode=auto` (the
 * default; also HEARTLINE_NETD_OWNER_MODE) probes at start which marks the kernel keeps
 * (probe_marks) and picks proto when it can; `proto` refuses to start without IFA_PROTO;
 * `fallback` never sets IFA_PROTO (as on an old kernel: how it is tested on a new one).
 *
 * The fence: every address bound by ADD has a deadline on CLOCK_MONOTONIC, pushed back by
 * RENEW. At the deadline the address is removed (the agent froze). On EOF on stdin (the
 * agent died, even by SIGKILL), on SIGTERM / SIGINT / SIGHUP, or when stdout breaks,
 * every Heartline address is removed at once and the program exits. The main loop is a
 * single ppoll() on stdin and a signalfd with the next deadline as its timeout; all state
 * lives in fixed-size static tables (no malloc).
 *
 * `heartline-netd --sweep-only` removes every Heartline address, prints them and exits.
 * `--owner-mode=auto|proto|fallback` comes before --sweep-only / --exec.
 *
 * `heartline-netd --exec CMD ARGS...` is the container layout: heartline-netd is PID 1, runs
 * the agent as its child and speaks the same protocol over a socketpair on the agent's fd 3
 * (HEARTLINE_NETD_FD=3). It reaps every child, passes SIGTERM / SIGINT / SIGHUP to the agent,
 * fences when the agent exits (or closes the socket), and exits with the agent's status. If
 * the agent were PID 1 instead, its death would SIGKILL the whole PID namespace, fence
 * included, before the fence could sweep.
 *
 * Least privilege in --exec mode (docs/adr/0020-unprivileged-agent.md), options before --exec:
 *
 *   --heartbeat-bind=ADDR:PORT  binds the agent's heartbeat socket (UDP; [ADDR]:PORT for IPv6;
 *                               port 694 needs CAP_NET_BIND_SERVICE) and hands it to the agent
 *                               on fd 4: HEARTLINE_HEARTBEAT_FD=4, HEARTLINE_HEARTBEAT_BIND=
 *                               the address and port bound;
 *   --heartbeat-rcvbuf=BYTES    the heartbeat socket's receive buffer (SO_RCVBUFFORCE, past
 *                               net.core.rmem_max; CAP_NET_ADMIN, else SO_RCVBUF up to it).
 *                               Default 2097152: the kernel counts twice that, 4 MiB of queued
 *                               datagrams, so a burst of takeovers, acks and releases from every
 *                               peer is not dropped while the agent waits for a core;
 *   --agent-uid=N [--agent-gid=G]  runs the agent as uid N, gid G (default N), no supplementary
 *                               groups, no capabilities (permitted, effective, inheritable and
 *                               ambient cleared; the bounding set too when netd holds
 *                               CAP_SETPCAP) and no_new_privs, checked before exec;
 *   --agent-state-dir=DIR       makes DIR (the agent's --state-dir) and the files in it the
 *                               agent's: chown to N:G, mode 0700 (CAP_CHOWN).
 *   --agent-nice=N              starts the agent at nice N (-20..19; the DaemonSet: -10), so a
 *                               node busy with its workloads does not starve the heartbeats
 *                               (CAP_SYS_NICE for N < 0; without it the agent runs at nice 0,
 *                               logged). Resources still start at nice 0 (docs/adr/0039).
 *
 *   --resource-uid=N [--resource-gid=G]  (with --agent-uid) starts Resources on the agent's
 *                               request as uid N, gid G, no capability, no_new_privs: the
 *                               launcher socket on the agent's fd 5 (HEARTLINE_LAUNCHER_FD=5,
 *                               HEARTLINE_LAUNCHER=this binary), used by the client mode
 *                               `heartline-netd --run -- PROGRAM ARGS...` (see "the Resource
 *                               launcher" below). netd empties its own bounding set at start
 *                               (CAP_SETPCAP), which the agent and Resources inherit.
 *   --resource-root=DIR         (with --resource-uid) starts every Resource chrooted into DIR
 *                               (host services: the node's root filesystem mounted read-only
 *                               in the container, docs/adr/0023-host-services.md), before it
 *                               drops to the Resource identity; needs CAP_SYS_CHROOT, kept.
 *                               `--self-status` through the launcher is then answered by the
 *                               child itself (this binary is not inside DIR).
 *
 * With --agent-uid, once the agent runs netd keeps only what it uses from then on:
 * CAP_NET_ADMIN, CAP_NET_RAW and CAP_KILL (to pass signals to the agent, another uid), and
 * CAP_SETUID, CAP_SETGID with --resource-uid, CAP_SYS_CHROOT with --resource-root.
 */
#define _GNU_SOURCE
#include <net/if.h> /* before the linux/ headers, which then skip their copies */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 2
#define HL_IFA_PROTO 0x48         /* 'H': marks an address as Heartline's (owner mode proto) */
#define HL_METRIC 0x484C4E44u     /* "HLND": the same, as a prefix-route metric (owner mode fallback) */
#define MAX_OWNED 256     /* addresses with a fence deadline */
#define MAX_ANNOUNCE 64   /* announcement series in flight */
#define MAX_FOUND 512     /* addresses collected by one dump */
#define IN_MAX 1024       /* longest request line */
#define OUT_MAX 16384     /* longest reply line */
#define MAX_LIFETIME 86400u
#define MAX_DEADLINE_MS 86400000LL

#ifndef IFA_RT_PRIORITY
#define IFA_RT_PRIORITY 9
#endif
#ifndef IFA_PROTO
#define IFA_PROTO 11
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

struct ip {
  int family; /* AF_INET or AF_INET6 */
  unsigned char a[16];
  int plen;
};

struct owned {
  int used;
  int ifindex;
  struct ip ip;
  int64_t deadline; /* ns, CLOCK_MONOTONIC */
};

struct announce {
  int used;
  int ifindex;
  struct ip ip;
  int left;
  int64_t interval, next; /* ns */
};

struct found {
  int ifindex;
  int proto;
  uint32_t metric;
  struct ip ip;
};

/* An address is Heartline's when it carries either mark, in either owner mode. */
static int is_ours(const struct found *f) { return f->proto == HL_IFA_PROTO || f->metric == HL_METRIC; }

enum { OWNER_PROTO, OWNER_FALLBACK };
static int owner_mode = OWNER_PROTO; /* how addr_set marks what it adds; chosen at start */

static struct owned owned[MAX_OWNED];
static struct announce announces[MAX_ANNOUNCE];
static struct found found[MAX_FOUND];
static int nfound, found_overflow;

static int nl_fd = -1, pkt_fd = -1, icmp6_fd = -1, ctl_fd = -1;
static uint32_t nl_seq;
static char nl_err[256];    /* last netlink extended-ack message */
static char out[OUT_MAX];   /* reply being built */
static size_t outlen;
static int out_broken;
static int in_fd = 0, out_fd = 1; /* the agent's pipe, or the socket in --exec mode */
static pid_t agent_pid;           /* --exec mode: the agent, our child */

/* ---------- small utilities ---------- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void logmsg(const char *fmt, ...) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "heartline-netd: ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf - 1) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t r;
  do r = write(2, buf, (size_t)n);
  while (r < 0 && errno == EINTR);
}

/* Writes all of buf to stdout. Never blocks when stdout is a pipe (it is non-blocking): a
 * frozen agent that stops reading must not stop the fence. A reply that does not fit is
 * dropped (the agent's request times out). */
static void write_out(const char *buf, size_t len) {
  while (len > 0 && !out_broken) {
    ssize_t r = write(out_fd, buf, len);
    if (r > 0) {
      buf += r;
      len -= (size_t)r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && errno == EAGAIN) {
      logmsg("stdout full, dropped %zu bytes of reply", len);
      return;
    } else {
      out_broken = 1; /* EPIPE: the agent is gone */
    }
  }
}

static void out_start(const char *id) {
  outlen = 0;
  size_t n = strlen(id);
  if (n > 64) n = 64;
  memcpy(out, id, n);
  outlen = n;
}

static void out_add(const char *fmt, ...) {
  if (outlen >= sizeof out - 2) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + outlen, sizeof out - 1 - outlen, fmt, ap);
  va_end(ap);
  if (n > 0) outlen += (size_t)n;
  if (outlen > sizeof out - 2) outlen = sizeof out - 2;
}

static void out_end(void) {
  for (size_t i = 0; i < outlen; i++)
    if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
  out[outlen++] = '\n';
  write_out(out, outlen);
  outlen = 0;
}

static void reply_err(const char *id, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  out_start(id);
  out_add(" ERR %s", msg);
  out_end();
}

static void reply_ok(const char *id) {
  out_start(id);
  out_add(" OK");
  out_end();
}

static int ip_maxlen(int family) { return family == AF_INET ? 32 : 128; }
static int ip_bytes(int family) { return family == AF_INET ? 4 : 16; }

static int ip_same_addr(const struct ip *x, const struct ip *y) {
  return x->family == y->family && memcmp(x->a, y->a, (size_t)ip_bytes(x->family)) == 0;
}

static int ip_same(const struct ip *x, const struct ip *y) { return ip_same_addr(x, y) && x->plen == y->plen; }

/* Whether `ip` lies inside the prefix net/plen. */
static int ip_in_prefix(const struct ip *ip, const struct ip *net) {
  if (ip->family != net->family) return 0;
  int bits = net->plen;
  for (int i = 0; bits > 0; i++, bits -= 8) {
    unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
    if ((ip->a[i] & mask) != (net->a[i] & mask)) return 0;
  }
  return 1;
}

/* Parses "addr" or "addr/plen". want_plen: 1 = required, 0 = optional (host length). */
static int parse_ip(const char *s, struct ip *ip, int want_plen) {
  char buf[INET6_ADDRSTRLEN + 8];
  if (strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  char *slash = strchr(buf, '/');
  if (slash) *slash = 0;
  memset(ip, 0, sizeof *ip);
  if (inet_pton(AF_INET, buf, ip->a) == 1)
    ip->family = AF_INET;
  else if (inet_pton(AF_INET6, buf, ip->a) == 1)
    ip->family = AF_INET6;
  else
    return -1;
  ip->plen = ip_maxlen(ip->family);
  if (slash) {
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || p < 1 || p > ip_maxlen(ip->family)) return -1;
    ip->plen = (int)p;
  } else if (want_plen) {
    return -1;
  }
  return 0;
}

static const char *fmt_cidr(const struct ip *ip, char *buf, size_t len) {
  char a[INET6_ADDRSTRLEN];
  inet_ntop(ip->family, ip->a, a, sizeof a);
  snprintf(buf, len, "%s/%d", a, ip->plen);
  return buf;
}

static const char *ifname_of(int ifindex, char *buf) {
  if (!if_indextoname((unsigned)ifindex, buf)) snprintf(buf, IF_NAMESIZE, "if%d", ifindex);
  return buf;
}

static int parse_num(const char *s, long long min, long long max, long long *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end || end == s || x < min || x > max) return -1;
  *v = x;
  return 0;
}

/* A deadline token: `@US` (absolute, CLOCK_MONOTONIC microseconds) or `MS` (relative to
 * now). Returns 0 and the deadline in ns; -1 when malformed; -2 when absolute and already
 * past (then *past_ms says by how much). */
static int parse_deadline(const char *s, int64_t now, int64_t *deadline, double *past_ms) {
  long long v;
  if (s[0] == '@') {
    if (parse_num(s + 1, 1, INT64_MAX / 1000, &v)) return -1;
    int64_t d = (int64_t)v * 1000LL;
    if (d > now + MAX_DEADLINE_MS * 1000000LL) return -1;
    if (d <= now) {
      *past_ms = (double)(now - d) / 1e6;
      return -2;
    }
    *deadline = d;
    return 0;
  }
  if (parse_num(s, 1, MAX_DEADLINE_MS, &v)) return -1;
  *deadline = now + (int64_t)v * 1000000LL;
  return 0;
}

#define DEADLINE_USAGE "want @microseconds on CLOCK_MONOTONIC (within a day from now) or milliseconds 1..86400000"

/* ---------- rtnetlink ---------- */

struct nlreq {
  struct nlmsghdr n;
  struct ifaddrmsg ifa;
  char attrs[256];
};

static void addattr(struct nlreq *req, int type, const void *data, int len) {
  size_t off = NLMSG_ALIGN(req->n.nlmsg_len);
  if (off + RTA_SPACE(len) > sizeof *req) abort(); /* fixed requests: a programming error */
  struct rtattr *rta = (struct rtattr *)((char *)req + off);
  rta->rta_type = (unsigned short)type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(rta), data, (size_t)len);
  req->n.nlmsg_len = (uint32_t)(off + RTA_ALIGN(rta->rta_len));
}

static int nl_open(void) {
  nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (nl_fd < 0) return -1;
  int one = 1;
  setsockopt(nl_fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(nl_fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(nl_fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
  return 0;
}

static union {
  char buf[32768];
  struct nlmsghdr align;
} rx;

static int nl_send(struct nlmsghdr *n) {
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  n->nlmsg_seq = ++nl_seq;
  n->nlmsg_pid = 0;
  ssize_t r;
  do r = sendto(nl_fd, n, n->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

static void nl_parse_extack(struct nlmsghdr *h, struct nlmsgerr *e) {
  nl_err[0] = 0;
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  size_t off = NLMSG_HDRLEN + sizeof *e; /* NETLINK_CAP_ACK: request not echoed */
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
  int len = (int)h->nlmsg_len - (int)NLMSG_ALIGN(off);
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(off));
  for (; len > 0 && RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == NLMSGERR_ATTR_MSG) {
      snprintf(nl_err, sizeof nl_err, "%.*s", (int)RTA_PAYLOAD(a), (char *)RTA_DATA(a));
      size_t l = strlen(nl_err);
      while (l && nl_err[l - 1] == 0) l--;
    }
  }
}

/* Receives until the reply to the last request. For dumps, calls cb on each message.
 * Returns 0, a negative errno, or 1 when a dump was interrupted (must be retried). */
static int nl_recv(void (*cb)(struct nlmsghdr *)) {
  int intr = 0;
  for (;;) {
    ssize_t r = recv(nl_fd, rx.buf, sizeof rx.buf, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int len = (int)r;
    for (struct nlmsghdr *h = &rx.align; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != nl_seq) continue;
      if (h->nlmsg_flags & NLM_F_DUMP_INTR) intr = 1;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        nl_parse_extack(h, e);
        return e->error;
      }
      if (h->nlmsg_type == NLMSG_DONE) return intr;
      if (cb) cb(h);
    }
  }
}

static void errtext(int err, char *buf, size_t len) {
  if (nl_err[0])
    snprintf(buf, len, "%s (%s)", strerror(-err), nl_err);
  else
    snprintf(buf, len, "%s", strerror(-err));
}

/* Sends RTM_NEWADDR with a lifetime in seconds and the given marks (proto: set IFA_PROTO;
 * metric: IFA_RT_PRIORITY when non-zero). */
static int addr_send(int ifindex, const struct ip *ip, unsigned lifetime, int nlflags, int proto_mark,
                     uint32_t metric) {
  struct nlreq req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof req.ifa);
  req.n.nlmsg_type = RTM_NEWADDR;
  req.n.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | nlflags);
  req.ifa.ifa_family = (unsigned char)ip->family;
  req.ifa.ifa_prefixlen = (unsigned char)ip->plen;
  req.ifa.ifa_index = (unsigned)ifindex;
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  uint32_t flags = ip->family == AF_INET6 ? IFA_F_NODAD : 0;
  req.ifa.ifa_flags = (unsigned char)flags;
  int n = ip_bytes(ip->family);
  addattr(&req, IFA_LOCAL, ip->a, n);
  addattr(&req, IFA_ADDRESS, ip->a, n);
  if (ip->family == AF_INET && ip->plen <= 30) {
    unsigned char brd[4];
    uint32_t host = ip->plen == 0 ? 0xffffffffu : (1u << (32 - ip->plen)) - 1;
    uint32_t a;
    memcpy(&a, ip->a, 4);
    a = htonl(ntohl(a) | host);
    memcpy(brd, &a, 4);
    addattr(&req, IFA_BROADCAST, brd, 4);
  }
  addattr(&req, IFA_FLAGS, &flags, sizeof flags);
  struct ifa_cacheinfo ci = {.ifa_prefered = lifetime, .ifa_valid = lifetime};
  addattr(&req, IFA_CACHEINFO, &ci, sizeof ci);
  if (metric) addattr(&req, IFA_RT_PRIORITY, &metric, sizeof metric);
  if (proto_mark) {
    unsigned char proto = HL_IFA_PROTO;
    addattr(&req, IFA_PROTO, &proto, 1);
  }
  int err = nl_send(&req.n);
  nl_err[0] = 0;
  return err ? err : nl_recv(NULL);
}

/* Adds or replaces an address with the owner mode's mark and a lifetime in seconds. The mark
 * goes with every request: an IPv4 NLM_F_REPLACE without IFA_RT_PRIORITY resets it to 0. */
static int addr_set(int ifindex, const struct ip *ip, unsigned lifetime, int replace) {
  int fallback = owner_mode == OWNER_FALLBACK;
  return addr_send(ifindex, ip, lifetime, replace ? NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL, !fallback,
                   fallback ? HL_METRIC : 0);
}

static int addr_del(int ifindex, const struct ip *ip) {
  struct nlreq req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof req.ifa);
  req.n.nlmsg_type = RTM_DELADDR;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.ifa.ifa_family = (unsigned char)ip->family;
  req.ifa.ifa_prefixlen = (unsigned char)ip->plen;
  req.ifa.ifa_index = (unsigned)ifindex;
  addattr(&req, IFA_LOCAL, ip->a, ip_bytes(ip->family));
  addattr(&req, IFA_ADDRESS, ip->a, ip_bytes(ip->family));
  int err = nl_send(&req.n);
  nl_err[0] = 0;
  if (!err) err = nl_recv(NULL);
  if (err == -EADDRNOTAVAIL || err == -ENOENT || err == -ENODEV) err = 0; /* already gone */
  return err;
}

/* Dump filter: which addresses end up in found[]. */
enum { ONLY_OURS, ANY_PROTO };
static int dump_mode;
static const struct ip *dump_match; /* optional: only this address (any prefix length) */

static void on_addr(struct nlmsghdr *h) {
  if (h->nlmsg_type != RTM_NEWADDR) return;
  struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return;
  struct found f;
  memset(&f, 0, sizeof f);
  f.ifindex = (int)ifa->ifa_index;
  f.ip.family = ifa->ifa_family;
  f.ip.plen = ifa->ifa_prefixlen;
  int have = 0;
  int len = (int)IFA_PAYLOAD(h);
  for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    int n = ip_bytes(f.ip.family);
    if (a->rta_type == IFA_LOCAL && (int)RTA_PAYLOAD(a) == n) {
      memcpy(f.ip.a, RTA_DATA(a), (size_t)n);
      have = 2;
    } else if (a->rta_type == IFA_ADDRESS && (int)RTA_PAYLOAD(a) == n && have < 2) {
      memcpy(f.ip.a, RTA_DATA(a), (size_t)n);
      have = 1;
    } else if (a->rta_type == IFA_PROTO && RTA_PAYLOAD(a) >= 1) {
      f.proto = *(unsigned char *)RTA_DATA(a);
    } else if (a->rta_type == IFA_RT_PRIORITY && RTA_PAYLOAD(a) >= sizeof f.metric) {
      memcpy(&f.metric, RTA_DATA(a), sizeof f.metric);
    }
  }
  if (!have) return;
  if (dump_mode == ONLY_OURS && !is_ours(&f)) return;
  if (dump_match && !ip_same_addr(&f.ip, dump_match)) return;
  if (nfound >= MAX_FOUND) {
    found_overflow = 1;
    return;
  }
  found[nfound++] = f;
}

/* Collects addresses into found[]. Returns 0 or a negative errno. */
static int dump_addrs(int mode, const struct ip *match) {
  for (int attempt = 0; attempt < 5; attempt++) {
    struct nlreq req;
    memset(&req, 0, sizeof req);
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof req.ifa);
    req.n.nlmsg_type = RTM_GETADDR;
    req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.ifa.ifa_family = match ? (unsigned char)match->family : AF_UNSPEC;
    nfound = 0;
    found_overflow = 0;
    dump_mode = mode;
    dump_match = match;
    nl_err[0] = 0;
    int err = nl_send(&req.n);
    if (!err) err = nl_recv(on_addr);
    dump_match = NULL;
    if (err <= 0) return err;
  }
  return -EAGAIN;
}

/* ---------- owned table and announcements ---------- */

static struct owned *owned_find(const struct ip *ip) {
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned[i].used && ip_same(&owned[i].ip, ip)) return &owned[i];
  return NULL;
}

static struct owned *owned_free_slot(void) {
  for (int i = 0; i < MAX_OWNED; i++)
    if (!owned[i].used) return &owned[i];
  return NULL;
}

/* Stops announcing an address: announcing a VIP we no longer hold would steal it back. */
static void announce_cancel(const struct ip *ip) {
  for (int i = 0; i < MAX_ANNOUNCE; i++)
    if (announces[i].used && ip_same_addr(&announces[i].ip, ip)) announces[i].used = 0;
}

static void owned_drop(const struct ip *ip) {
  struct owned *o = owned_find(ip);
  if (o) o->used = 0;
  announce_cancel(ip);
}

/* Removes every Heartline address; appends "ifname cidr" pairs to the reply if asked. */
static int sweep_all(int report) {
  int err = 0, removed = 0;
  /* Known addresses first, without a dump: the fastest path when the agent dies. (When
   * reporting, the dump below finds them too and names them.) */
  memset(announces, 0, sizeof announces);
  for (int i = 0; i < MAX_OWNED; i++) {
    if (!owned[i].used) continue;
    owned[i].used = 0;
    if (!report) addr_del(owned[i].ifindex, &owned[i].ip);
  }
  for (int round = 0; round < 64; round++) {
    err = dump_addrs(ONLY_OURS, NULL);
    if (err || nfound == 0) break;
    int had_overflow = found_overflow;
    for (int i = 0; i < nfound; i++) {
      char ifn[IF_NAMESIZE], c[64];
      int e = addr_del(found[i].ifindex, &found[i].ip);
      if (e) {
        logmsg("sweep: removing %s from %s failed: %s", fmt_cidr(&found[i].ip, c, sizeof c),
               ifname_of(found[i].ifindex, ifn), strerror(-e));
        err = e;
        continue;
      }
      removed++;
      if (report) out_add(" %s %s", ifname_of(found[i].ifindex, ifn), fmt_cidr(&found[i].ip, c, sizeof c));
    }
    if (err || !had_overflow) break;
  }
  (void)removed;
  return err;
}

static int mac_of(int ifindex, unsigned char mac[6]) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (!if_indextoname((unsigned)ifindex, ifr.ifr_name)) return -errno;
  if (ioctl(ctl_fd, SIOCGIFHWADDR, &ifr) < 0) return -errno;
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) return -EPFNOSUPPORT;
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return 0;
}

static int send_garp(int ifindex, const struct ip *ip) {
  unsigned char mac[6];
  int err = mac_of(ifindex, mac);
  if (err) return err;
  if (pkt_fd < 0) {
    /* protocol 0: send only, nothing is queued for reception */
    pkt_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (pkt_fd < 0) return -errno;
  }
  struct __attribute__((packed)) {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t op;
    uint8_t sha[6], spa[4], tha[6], tpa[4];
  } arp;
  arp.htype = htons(ARPHRD_ETHER);
  arp.ptype = htons(ETH_P_IP);
  arp.hlen = 6;
  arp.plen = 4;
  arp.op = htons(ARPOP_REQUEST); /* RFC 5227 announcement: sender = target = ip */
  memcpy(arp.sha, mac, 6);
  memcpy(arp.spa, ip->a, 4);
  memset(arp.tha, 0, 6);
  memcpy(arp.tpa, ip->a, 4);
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memset(to.sll_addr, 0xff, 6);
  ssize_t r;
  do r = sendto(pkt_fd, &arp, sizeof arp, 0, (struct sockaddr *)&to, sizeof to);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

static int send_una(int ifindex, const struct ip *ip) {
  unsigned char mac[6];
  int err = mac_of(ifindex, mac);
  if (err) return err;
  if (icmp6_fd < 0) {
    icmp6_fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (icmp6_fd < 0) return -errno;
    struct icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f); /* send only */
    setsockopt(icmp6_fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    int hops = 255;
    setsockopt(icmp6_fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(icmp6_fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
    int loop = 0;
    setsockopt(icmp6_fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop);
  }
  struct {
    struct nd_neighbor_advert na;
    struct nd_opt_hdr opt;
    uint8_t mac[6];
  } __attribute__((packed)) pkt;
  memset(&pkt, 0, sizeof pkt);
  pkt.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  pkt.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE; /* unsolicited, override */
  memcpy(&pkt.na.nd_na_target, ip->a, 16);
  pkt.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
  pkt.opt.nd_opt_len = 1;
  memcpy(pkt.mac, mac, 6);
  /* checksum: computed by the kernel for ICMPv6 raw sockets */
  struct sockaddr_in6 to;
  memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = (uint32_t)ifindex;
  char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = &pkt, .iov_len = sizeof pkt};
  struct msghdr m = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
  struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA(c);
  memcpy(&pi->ipi6_addr, ip->a, 16); /* source = the VIP itself */
  pi->ipi6_ifindex = (unsigned)ifindex;
  ssize_t r;
  do r = sendmsg(icmp6_fd, &m, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EADDRNOTAVAIL) { /* VIP not usable as source: let the kernel pick */
    memset(&pi->ipi6_addr, 0, 16);
    do r = sendmsg(icmp6_fd, &m, 0);
    while (r < 0 && errno == EINTR);
  }
  return r < 0 ? -errno : 0;
}

static int send_announce(int ifindex, const struct ip *ip) {
  return ip->family == AF_INET ? send_garp(ifindex, ip) : send_una(ifindex, ip);
}

/* ---------- the fence ---------- */

/* late_ms: how long after its deadline the address was removed (the fence delay the voters'
 * margin must cover, docs/adr/0036-fence-delay-budget.md). */
static void emit_expired(int ifindex, const struct ip *ip, double late_ms) {
  char ifn[IF_NAMESIZE], c[64];
  out_start("*");
  out_add(" EXPIRED %s %s late_ms=%.1f", ifname_of(ifindex, ifn), fmt_cidr(ip, c, sizeof c), late_ms);
  out_end();
}

static void fire_deadlines(int64_t now) {
  for (int i = 0; i < MAX_OWNED; i++) {
    struct owned *o = &owned[i];
    if (!o->used || o->deadline > now) continue;
    o->used = 0;
    announce_cancel(&o->ip);
    int err = addr_del(o->ifindex, &o->ip);
    double late_ms = (double)(now_ns() - o->deadline) / 1e6;
    char ifn[IF_NAMESIZE], c[64];
    if (err)
      logmsg("fence: removing %s from %s at its deadline failed: %s (the kernel lifetime still applies)",
             fmt_cidr(&o->ip, c, sizeof c), ifname_of(o->ifindex, ifn), strerror(-err));
    else
      logmsg("fence: removed %s from %s at its deadline (%.1f ms late)", fmt_cidr(&o->ip, c, sizeof c),
             ifname_of(o->ifindex, ifn), late_ms);
    emit_expired(o->ifindex, &o->ip, late_ms);
  }
}

static void run_announces(int64_t now) {
  for (int i = 0; i < MAX_ANNOUNCE; i++) {
    struct announce *a = &announces[i];
    if (!a->used || a->next > now) continue;
    int err = send_announce(a->ifindex, &a->ip);
    if (err) {
      char c[64];
      logmsg("announce %s failed: %s", fmt_cidr(&a->ip, c, sizeof c), strerror(-err));
    }
    if (--a->left <= 0)
      a->used = 0;
    else
      a->next = now + a->interval;
  }
}

static int64_t next_wakeup(void) {
  int64_t next = INT64_MAX;
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned[i].used && owned[i].deadline < next) next = owned[i].deadline;
  for (int i = 0; i < MAX_ANNOUNCE; i++)
    if (announces[i].used && announces[i].next < next) next = announces[i].next;
  return next;
}

/* ---------- requests ---------- */

static void cmd_add(const char *id, char **t, int n) {
  if (n != 6) return reply_err(id, "usage: ADD id ifname cidr lifetime_s deadline");
  struct ip ip;
  long long life;
  int64_t deadline;
  double past_ms = 0;
  if (parse_ip(t[3], &ip, 1)) return reply_err(id, "bad cidr %s: want address/prefix-length", t[3]);
  if (parse_num(t[4], 1, MAX_LIFETIME, &life)) return reply_err(id, "bad lifetime_s %s: want 1..%u", t[4], MAX_LIFETIME);
  int dr = parse_deadline(t[5], now_ns(), &deadline, &past_ms);
  if (dr == -1) return reply_err(id, "bad deadline %s: " DEADLINE_USAGE, t[5]);
  if (dr == -2)
    return reply_err(id, "deadline %s passed %.1f ms before the request was read: not adding %s", t[5], past_ms, t[3]);
  int ifindex = (int)if_nametoindex(t[2]);
  if (!ifindex) return reply_err(id, "no interface %s in this network namespace", t[2]);
  struct owned *o = owned_find(&ip);
  char ifn[IF_NAMESIZE];
  if (o && o->ifindex != ifindex)
    return reply_err(id, "%s is already bound on %s: DEL it first", t[3], ifname_of(o->ifindex, ifn));
  if (!o && !(o = owned_free_slot())) return reply_err(id, "too many addresses (max %d)", MAX_OWNED);
  int err = dump_addrs(ANY_PROTO, &ip);
  if (err) return reply_err(id, "listing addresses failed: %s", strerror(-err));
  int replace = 0;
  for (int i = 0; i < nfound; i++) {
    if (found[i].ifindex != ifindex) continue;
    if (!is_ours(&found[i]))
      return reply_err(id, "%s is already on %s and is not Heartline's (added outside Heartline): remove it or choose another address", t[3], t[2]);
    replace = 1;
  }
  err = addr_set(ifindex, &ip, (unsigned)life, replace);
  if (err) {
    char e[400];
    errtext(err, e, sizeof e);
    return reply_err(id, "adding %s to %s failed: %s", t[3], t[2], e);
  }
  o->used = 1;
  o->ifindex = ifindex;
  o->ip = ip;
  /* A relative deadline counts from the read (above), not from after the netlink round trip;
   * if the deadline passed meanwhile, the main loop's fence removes the address next. */
  o->deadline = deadline;
  reply_ok(id);
}

static void cmd_renew(const char *id, char **t, int n) {
  if (n != 5) return reply_err(id, "usage: RENEW id cidr lifetime_s deadline");
  struct ip ip;
  long long life;
  int64_t deadline;
  double past_ms = 0;
  if (parse_ip(t[2], &ip, 1)) return reply_err(id, "bad cidr %s: want address/prefix-length", t[2]);
  if (parse_num(t[3], 1, MAX_LIFETIME, &life)) return reply_err(id, "bad lifetime_s %s: want 1..%u", t[3], MAX_LIFETIME);
  int dr = parse_deadline(t[4], now_ns(), &deadline, &past_ms);
  if (dr == -1) return reply_err(id, "bad deadline %s: " DEADLINE_USAGE, t[4]);
  struct owned *o = owned_find(&ip);
  if (!o) return reply_err(id, "%s is not bound (its deadline passed or it was removed): ADD it again", t[2]);
  if (dr == -2) {
    /* The renewal came after the deadline it asks for: the address must already be gone. */
    o->deadline = now_ns();
    fire_deadlines(o->deadline);
    return reply_err(id, "deadline %s passed %.1f ms before the request was read: %s removed", t[4], past_ms, t[2]);
  }
  /* Never resurrect: the kernel would re-create a missing address on NLM_F_REPLACE. */
  int err = dump_addrs(ONLY_OURS, &ip);
  if (err) return reply_err(id, "listing addresses failed: %s", strerror(-err));
  int present = 0;
  for (int i = 0; i < nfound; i++)
    if (found[i].ifindex == o->ifindex && found[i].ip.plen == ip.plen) present = 1;
  char ifn[IF_NAMESIZE];
  if (!present) {
    owned_drop(&ip);
    return reply_err(id, "%s is gone from %s (removed outside heartline-netd or expired): ADD it again", t[2],
                     ifname_of(o->ifindex, ifn));
  }
  err = addr_set(o->ifindex, &ip, (unsigned)life, 1);
  if (err) {
    char e[400];
    errtext(err, e, sizeof e);
    return reply_err(id, "renewing %s on %s failed: %s", t[2], ifname_of(o->ifindex, ifn), e);
  }
  o->deadline = deadline;
  reply_ok(id);
}

static void cmd_del(const char *id, char **t, int n) {
  if (n != 3) return reply_err(id, "usage: DEL id cidr");
  struct ip ip;
  if (parse_ip(t[2], &ip, 1)) return reply_err(id, "bad cidr %s: want address/prefix-length", t[2]);
  owned_drop(&ip);
  int err = dump_addrs(ONLY_OURS, &ip);
  if (err) return reply_err(id, "listing addresses failed: %s", strerror(-err));
  for (int i = 0; i < nfound; i++) {
    if (found[i].ip.plen != ip.plen) continue;
    err = addr_del(found[i].ifindex, &found[i].ip);
    if (err) {
      char ifn[IF_NAMESIZE], e[400];
      errtext(err, e, sizeof e);
      return reply_err(id, "removing %s from %s failed: %s", t[2], ifname_of(found[i].ifindex, ifn), e);
    }
  }
  reply_ok(id);
}

static void cmd_list(const char *id, int n) {
  if (n != 2) return reply_err(id, "usage: LIST id");
  int err = dump_addrs(ONLY_OURS, NULL);
  if (err) return reply_err(id, "listing addresses failed: %s", strerror(-err));
  out_start(id);
  out_add(" OK");
  for (int i = 0; i < nfound; i++) {
    char ifn[IF_NAMESIZE], c[64];
    out_add(" %s %s", ifname_of(found[i].ifindex, ifn), fmt_cidr(&found[i].ip, c, sizeof c));
  }
  out_end();
}

static void cmd_sweep(const char *id, int n) {
  if (n != 2) return reply_err(id, "usage: SWEEP id");
  out_start(id);
  out_add(" OK");
  int err = sweep_all(1);
  if (err) return reply_err(id, "sweep failed: %s", strerror(-err));
  out_end();
}

static void cmd_announce(const char *id, char **t, int n) {
  if (n != 6) return reply_err(id, "usage: ANNOUNCE id ifname ip count interval_ms");
  struct ip ip;
  long long count, interval;
  if (parse_ip(t[3], &ip, 0)) return reply_err(id, "bad ip %s", t[3]);
  if (parse_num(t[4], 1, 100, &count)) return reply_err(id, "bad count %s: want 1..100", t[4]);
  if (parse_num(t[5], 0, 60000, &interval)) return reply_err(id, "bad interval_ms %s: want 0..60000", t[5]);
  int ifindex = (int)if_nametoindex(t[2]);
  if (!ifindex) return reply_err(id, "no interface %s in this network namespace", t[2]);
  const struct owned *o = NULL;
  for (int i = 0; i < MAX_OWNED && !o; i++)
    if (owned[i].used && owned[i].ifindex == ifindex && ip_same_addr(&owned[i].ip, &ip)) o = &owned[i];
  if (!o) return reply_err(id, "%s is not bound on %s by heartline-netd: ADD it before announcing", t[3], t[2]);
  int err = send_announce(ifindex, &o->ip);
  if (err)
    return reply_err(id, "announcing %s on %s failed: %s%s", t[3], t[2], strerror(-err),
                     err == -EPERM ? " (needs CAP_NET_RAW)" : "");
  announce_cancel(&ip);
  if (count > 1) {
    struct announce *a = NULL;
    for (int i = 0; i < MAX_ANNOUNCE && !a; i++)
      if (!announces[i].used) a = &announces[i];
    if (!a) return reply_err(id, "too many announcements in flight (max %d)", MAX_ANNOUNCE);
    a->used = 1;
    a->ifindex = ifindex;
    a->ip = o->ip;
    a->left = (int)count - 1;
    a->interval = interval * 1000000LL;
    a->next = now_ns() + a->interval;
  }
  reply_ok(id);
}

static void cmd_iface(const char *id, char **t, int n) {
  if (n != 3) return reply_err(id, "usage: IFACE id ip");
  struct ip ip;
  if (parse_ip(t[2], &ip, 0)) return reply_err(id, "bad ip %s", t[2]);
  ip.plen = ip_maxlen(ip.family);
  struct ip fam = {.family = ip.family};
  int err = dump_addrs(ANY_PROTO, NULL);
  if (err) return reply_err(id, "listing addresses failed: %s", strerror(-err));
  int best = -1;
  for (int i = 0; i < nfound; i++) {
    const struct found *f = &found[i];
    if (is_ours(f) || f->ip.family != fam.family || f->ip.plen >= ip_maxlen(f->ip.family)) continue;
    if (ip_in_prefix(&ip, &f->ip) && (best < 0 || f->ip.plen > found[best].ip.plen)) best = i;
  }
  out_start(id);
  out_add(" OK");
  if (best >= 0) {
    char ifn[IF_NAMESIZE];
    out_add(" %s", ifname_of(found[best].ifindex, ifn));
  }
  out_end();
}

static void cmd_link(const char *id, char **t, int n) {
  if (n != 3) return reply_err(id, "usage: LINK id ifname");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (strlen(t[2]) >= IF_NAMESIZE) return reply_err(id, "no interface %s in this network namespace", t[2]);
  strcpy(ifr.ifr_name, t[2]);
  if (ioctl(ctl_fd, SIOCGIFFLAGS, &ifr) < 0)
    return errno == ENODEV ? reply_err(id, "no interface %s in this network namespace", t[2])
                           : reply_err(id, "reading flags of %s failed: %s", t[2], strerror(errno));
  int up = (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
  out_start(id);
  out_add(up ? " OK up" : " OK down");
  out_end();
}

static void handle_line(char *line) {
  char *t[8], *save = NULL;
  int n = 0;
  for (char *p = strtok_r(line, " \t\r", &save); p && n < 8; p = strtok_r(NULL, " \t\r", &save)) t[n++] = p;
  if (n == 0) return;
  if (n < 2) return reply_err("-", "missing request id: want OP id args...");
  const char *id = t[1], *op = t[0];
  if (!strcmp(op, "ADD")) cmd_add(id, t, n);
  else if (!strcmp(op, "RENEW")) cmd_renew(id, t, n);
  else if (!strcmp(op, "DEL")) cmd_del(id, t, n);
  else if (!strcmp(op, "LIST")) cmd_list(id, n);
  else if (!strcmp(op, "SWEEP")) cmd_sweep(id, n);
  else if (!strcmp(op, "ANNOUNCE")) cmd_announce(id, t, n);
  else if (!strcmp(op, "IFACE")) cmd_iface(id, t, n);
  else if (!strcmp(op, "LINK")) cmd_link(id, t, n);
  else if (!strcmp(op, "HELLO")) {
    out_start(id);
    out_add(" OK heartline-netd %d %d %s", PROTOCOL_VERSION, (int)getpid(),
            owner_mode == OWNER_PROTO ? "proto" : "fallback");
    out_end();
  } else reply_err(id, "unknown op %s", op);
}

/* ---------- owner mode ---------- */

/* Which marks the running kernel keeps (docs/adr/0013-netd-owner-mode.md). Linux < 5.18
 * accepts IFA_PROTO and drops it without an error, so the only sure test is to add an
 * address carrying both marks and read it back. The probe address is 127.72.76.x/32 on lo:
 * inside 127.0.0.0/8, which lo already answers for, so it changes neither reachability nor
 * any route that matters; created with NLM_F_EXCL, so an existing address is never touched
 * (a taken candidate is skipped); with a 1 s kernel lifetime, so it is gone by itself even if
 * netd dies between adding and deleting it; deleted as soon as it has been read back.
 * Returns 0 and sets *proto_kept / *metric_kept, or a negative errno. */
static int probe_marks(int *proto_kept, int *metric_kept) {
  int lo = (int)if_nametoindex("lo");
  if (!lo) return -ENODEV;
  /* Test hook (test/e2e/netd.test.ts): probe as a kernel < 5.18 answers, by not sending
   * IFA_PROTO, to exercise the choice made on such kernels. */
  const char *old = getenv("HEARTLINE_NETD_TEST_KERNEL_DROPS_PROTO");
  int send_proto = !(old && !strcmp(old, "1"));
  if (!send_proto) logmsg("owner probe: HEARTLINE_NETD_TEST_KERNEL_DROPS_PROTO=1: probing as a kernel < 5.18 (tests only)");
  for (unsigned char cand = 1; cand <= 8; cand++) {
    struct ip ip = {.family = AF_INET, .plen = 32, .a = {127, 72, 76, cand}};
    int err = addr_send(lo, &ip, 1, NLM_F_CREATE | NLM_F_EXCL, send_proto, HL_METRIC);
    if (err == -EEXIST) continue;
    if (err == -EINVAL && send_proto) { /* a kernel that refuses IFA_PROTO instead of ignoring it */
      send_proto = 0;
      err = addr_send(lo, &ip, 1, NLM_F_CREATE | NLM_F_EXCL, 0, HL_METRIC);
      if (err == -EEXIST) continue;
    }
    if (err) return err;
    err = dump_addrs(ANY_PROTO, &ip);
    int seen = 0;
    for (int i = 0; !err && i < nfound; i++) {
      if (found[i].ifindex != lo || found[i].ip.plen != 32) continue;
      seen = 1;
      *proto_kept = found[i].proto == HL_IFA_PROTO;
      *metric_kept = found[i].metric == HL_METRIC;
    }
    int derr = addr_del(lo, &ip);
    if (derr) {
      char c[64];
      logmsg("owner probe: removing %s from lo failed: %s (its 1 s lifetime removes it)",
             fmt_cidr(&ip, c, sizeof c), strerror(-derr));
    }
    if (err) return err;
    if (seen) return 0;
    /* gone before it was read back (a concurrent sweep?): try the next candidate */
  }
  return -EAGAIN;
}

/* Chooses owner_mode from `want` (auto, proto, fallback) and what the kernel keeps; logs
 * the choice. Returns 0, or -1 after logging why netd cannot run safely. */
static int choose_owner_mode(const char *want) {
  struct utsname u;
  const char *kernel = uname(&u) == 0 ? u.release : "(unknown)";
  int proto_kept = 0, metric_kept = 0;
  int64_t t0 = now_ns();
  int err = probe_marks(&proto_kept, &metric_kept);
  double probe_ms = (double)(now_ns() - t0) / 1e6;
  if (err) {
    logmsg("owner mode: probing which address marks kernel %s keeps failed: %s%s", kernel, strerror(-err),
           err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
    return -1;
  }
  char fallback_mark[96];
  snprintf(fallback_mark, sizeof fallback_mark, "Heartline's addresses carry prefix-route metric %u (probe %.2f ms)",
           HL_METRIC, probe_ms);
  if (!strcmp(want, "proto") || (!strcmp(want, "auto") && proto_kept)) {
    if (!proto_kept) {
      logmsg("owner mode proto (--owner-mode=proto): kernel %s does not keep IFA_PROTO (Linux >= 5.18 does): "
             "use --owner-mode=auto or fallback",
             kernel);
      return -1;
    }
    owner_mode = OWNER_PROTO;
    logmsg("owner mode proto%s: kernel %s keeps IFA_PROTO; Heartline's addresses carry proto 0x%02x (probe %.2f ms)",
           strcmp(want, "auto") ? " (--owner-mode=proto)" : "", kernel, HL_IFA_PROTO, probe_ms);
    return 0;
  }
  if (!metric_kept) {
    logmsg("owner mode %s: kernel %s keeps neither IFA_PROTO nor IFA_RT_PRIORITY, so Heartline's addresses "
           "could not be told apart from others: heartline-netd needs Linux >= 5.4",
           want, kernel);
    return -1;
  }
  owner_mode = OWNER_FALLBACK;
  if (!strcmp(want, "fallback"))
    logmsg("owner mode fallback (--owner-mode=fallback; kernel %s %s IFA_PROTO): %s", kernel,
           proto_kept ? "keeps" : "drops", fallback_mark);
  else
    logmsg("owner mode fallback: kernel %s drops IFA_PROTO (kept from Linux 5.18); %s", kernel, fallback_mark);
  return 0;
}

/* ---------- main ---------- */

static void set_nonblock(int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* never a terminal we share */
}

static int fence_and_exit(const char *why) {
  int64_t t0 = now_ns();
  int err = sweep_all(0);
  logmsg("%s: removed every Heartline address in %.2f ms, exiting", why, (double)(now_ns() - t0) / 1e6);
  return err ? 1 : 0;
}

/* ---------- least privilege (--exec mode, docs/adr/0020-unprivileged-agent.md) ---------- */

#define AGENT_FD 3     /* the netd socket, HEARTLINE_NETD_FD */
#define HEARTBEAT_FD 4 /* the heartbeat socket, HEARTLINE_HEARTBEAT_FD */

static struct {
  int set;
  uid_t uid;
  gid_t gid;
} agent_user, resource_user; /* resource_user: --resource-uid, who Resources run as */
/* --agent-nice: the agent's nice value, set before it drops its capabilities (CAP_SYS_NICE). */
static int agent_nice, agent_nice_set;
static const char *resource_root; /* --resource-root: where Resources are chrooted, or NULL */
static int hb_fd = -1;          /* the heartbeat socket bound for the agent (--heartbeat-bind) */
static char hb_bound[INET6_ADDRSTRLEN + 16]; /* what it is bound to, "addr:port" / "[addr]:port" */
/* --heartbeat-rcvbuf: SO_RCVBUF asked for the heartbeat socket (src/adapters/udp: HEARTBEAT_RECEIVE_BUFFER). */
static long long hb_rcvbuf = 2097152;

static int caps_get(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  return (int)syscall(SYS_capget, &h, d);
}

static int caps_set(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  return (int)syscall(SYS_capset, &h, d);
}

static int has_cap(int cap) {
  struct __user_cap_data_struct d[2];
  if (caps_get(d) < 0) return 0;
  return (d[cap / 32].effective >> (cap % 32)) & 1;
}

/* Parses a decimal id in 1..2^32-2 (0 is root, -1 means "unchanged" to setresuid). */
static int parse_id(const char *s, unsigned *id) {
  long long v;
  if (parse_num(s, 1, 0xfffffffeLL, &v)) return -1;
  *id = (unsigned)v;
  return 0;
}

/* Binds the agent's heartbeat socket: "ADDR:PORT" or "[ADDR]:PORT" (IPv6). Sets hb_fd and
 * hb_bound (the port the kernel gave, for port 0). Returns 0, or -1 after logging why. */
static int bind_heartbeat(const char *spec) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host) {
    logmsg("--heartbeat-bind=%s: want ADDR:PORT, e.g. 0.0.0.0:694 or [::]:694", spec);
    return -1;
  }
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = 0;
  char *h = host;
  size_t hl = strlen(h);
  int bracketed = h[0] == '[' && hl > 2 && h[hl - 1] == ']';
  if (bracketed) {
    h[hl - 1] = 0;
    h++;
  }
  long long port;
  struct ip ip;
  if (parse_num(colon + 1, 0, 65535, &port) || parse_ip(h, &ip, 0) || (ip.family == AF_INET6) != bracketed) {
    logmsg("--heartbeat-bind=%s: want ADDR:PORT with an IP literal and a port 0..65535 (IPv6 as [ADDR]:PORT)",
           spec);
    return -1;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (ip.family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    memcpy(&a->sin_addr, ip.a, 4);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    memcpy(&a->sin6_addr, ip.a, 16);
    len = sizeof *a;
  }
  int fd = socket(ip.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0) {
    int e = errno;
    logmsg("--heartbeat-bind=%s: cannot bind the heartbeat socket: %s%s", spec, strerror(e),
           e == EACCES ? " (a port below 1024 needs CAP_NET_BIND_SERVICE)"
           : e == EADDRINUSE ? " (another process uses the port: one agent per node)"
           : e == EADDRNOTAVAIL ? " (the address is not on this node)"
                                : "");
    if (fd >= 0) close(fd);
    return -1;
  }
  /* The receive buffer: FORCE passes rmem_max (the stock 208 KiB holds ~150 heartbeats). */
  int want = (int)hb_rcvbuf, got = 0;
  socklen_t gl = sizeof got;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) < 0) {
    int e = errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);
    logmsg("--heartbeat-rcvbuf=%lld: SO_RCVBUFFORCE: %s (needs CAP_NET_ADMIN); the kernel gave %d bytes "
           "(net.core.rmem_max caps it): bursts may drop heartbeats",
           hb_rcvbuf, strerror(e), got);
  }
  len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  char a[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
    snprintf(hb_bound, sizeof hb_bound, "%s:%u", a, ntohs(s4->sin_port));
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
    snprintf(hb_bound, sizeof hb_bound, "[%s]:%u", a, ntohs(s6->sin6_port));
  }
  hb_fd = fd;
  return 0;
}

struct linux_dirent64_hdr {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* Makes DIR the agent's (--agent-state-dir): creates it if missing (one level), chowns it to
 * the agent's uid:gid with mode 0700, and chowns the regular files directly in it that
 * another uid owns (a previous agent that ran as root left its incarnation counter there).
 * Nothing to do when it is the agent's already.
 * Never follows a symbolic link and skips files with several links (a hard link planted to a
 * file elsewhere). Returns 0, or -1 after logging why. */
static int prepare_state_dir(const char *dir) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    logmsg("--agent-state-dir=%s: cannot create it: %s", dir, strerror(errno));
    return -1;
  }
  struct stat ds;
  if (lstat(dir, &ds) < 0 || !S_ISDIR(ds.st_mode)) {
    logmsg("--agent-state-dir=%s: not a directory (a symbolic link is refused)", dir);
    return -1;
  }
  /* Already the agent's (any start after the first): what is inside is its own business, and
   * netd, without CAP_DAC_OVERRIDE, could not look inside a 0700 directory of another uid. */
  if (ds.st_uid == agent_user.uid && ds.st_gid == agent_user.gid) return 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    logmsg("--agent-state-dir=%s: cannot open it as a directory: %s", dir, strerror(errno));
    return -1;
  }
  static char buf[8192];
  long n;
  int chowned = 0;
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct linux_dirent64_hdr *e = (struct linux_dirent64_hdr *)(buf + off);
      off += e->d_reclen;
      struct stat st;
      if (e->d_name[0] == '.' || fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
      if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid == agent_user.uid) continue;
      if (fchownat(fd, e->d_name, agent_user.uid, agent_user.gid, AT_SYMLINK_NOFOLLOW) < 0) {
        logmsg("--agent-state-dir=%s: cannot give %s to uid %u: %s", dir, e->d_name, (unsigned)agent_user.uid,
               strerror(errno));
        close(fd);
        return -1;
      }
      chowned++;
    }
  }
  /* The directory last, mode before owner: once it is the agent's, netd (no CAP_FOWNER, no
   * CAP_DAC_OVERRIDE) could neither change its mode nor look inside. */
  if (fchmod(fd, 0700) < 0 || fchown(fd, agent_user.uid, agent_user.gid) < 0) {
    logmsg("--agent-state-dir=%s: cannot give it to uid %u: %s%s", dir, (unsigned)agent_user.uid,
           strerror(errno), errno == EPERM ? " (needs CAP_CHOWN)" : "");
    close(fd);
    return -1;
  }
  close(fd);
  if (chowned) logmsg("--agent-state-dir=%s: gave %d file(s) to uid %u", dir, chowned, (unsigned)agent_user.uid);
  return 0;
}

/* Between fork and exec: becomes uid:gid with no capability and no way to gain one, and checks
 * it. Returns 0, or -1 with *step naming what failed (errno set). want_empty_bounding: also
 * require an empty bounding set (Resources; netd emptied its own at start). */
static int drop_privileges(uid_t uid, gid_t gid, int want_empty_bounding, const char **step) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    *step = "clearing ambient capabilities";
    return -1;
  }
  /* The bounding set can be emptied only with CAP_SETPCAP (the lab has it; with
   * --resource-uid netd emptied its own at start, so there is nothing left to drop). Without
   * it no_new_privs below is what keeps the process from regaining a capability (file
   * capabilities and set-user-ID bits are ignored). */
  if (has_cap(CAP_SETPCAP)) {
    for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
        *step = "emptying the capability bounding set";
        return -1;
      }
  }
  *step = "dropping supplementary groups (needs CAP_SETGID)";
  if (setgroups(0, NULL) < 0) return -1;
  *step = "setresgid (needs CAP_SETGID)";
  if (setresgid(gid, gid, gid) < 0) return -1;
  *step = "setresuid (needs CAP_SETUID)";
  if (setresuid(uid, uid, uid) < 0) return -1;
  /* The kernel cleared the permitted and effective sets when every uid left 0 (no
   * SECBIT_KEEP_CAPS); clear the inheritable set as well. */
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  *step = "clearing capabilities";
  if (caps_set(d) < 0) return -1;
  *step = "setting no_new_privs";
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
  /* Check, do not trust: the ids, the empty sets, and that root cannot be had back. */
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  *step = "checking the result";
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || caps_get(d) < 0) return -1;
  int caps_left = 0;
  for (int i = 0; i < 2; i++) caps_left |= d[i].effective | d[i].permitted | d[i].inheritable;
  if (want_empty_bounding)
    for (int c = 0, r; (r = prctl(PR_CAPBSET_READ, c, 0, 0, 0)) >= 0; c++)
      if (r == 1) caps_left = 1;
  if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid || caps_left ||
      getgroups(0, NULL) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || setuid(0) == 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0) == 1) {
    if (want_empty_bounding && caps_left) *step = "checking the result (a capability is left, or the bounding set is not empty)";
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* In the agent's process between fork and exec: becomes agent_user with no capability and
 * no way to gain one, and checks it. Returns 0, or -1 after logging what failed. */
static int drop_agent_privileges(void) {
  const char *step = "";
  if (drop_privileges(agent_user.uid, agent_user.gid, 0, &step) == 0) return 0;
  logmsg("--agent-uid=%u: %s failed: %s; not starting the agent", (unsigned)agent_user.uid, step, strerror(errno));
  return -1;
}

/* netd, once the agent runs as another uid: keeps only CAP_NET_ADMIN (addresses), CAP_NET_RAW
 * (announcements) and CAP_KILL (signals to the agent), of those it holds. Best effort: logs
 * what it holds after. */
static void keep_netd_capabilities(void) {
  struct __user_cap_data_struct d[2];
  if (caps_get(d) < 0) return;
  /* With --resource-uid also CAP_SETUID and CAP_SETGID: netd starts each Resource as that uid. */
  /* With --resource-root also CAP_SYS_CHROOT: each Resource is chrooted before it drops. */
  const int keep[] = {CAP_NET_ADMIN, CAP_NET_RAW, CAP_KILL, CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT};
  size_t nkeep = resource_user.set ? (resource_root ? 6 : 5) : 3;
  struct __user_cap_data_struct k[2];
  memset(k, 0, sizeof k);
  for (size_t i = 0; i < nkeep; i++) {
    uint32_t bit = 1u << (keep[i] % 32);
    int w = keep[i] / 32;
    k[w].permitted |= d[w].permitted & bit;
    k[w].effective |= d[w].permitted & bit;
  }
  if (caps_set(k) < 0) {
    logmsg("dropping netd's own capabilities failed: %s", strerror(errno));
    return;
  }
  logmsg("capabilities kept: %s%s%s%s%s%s (effective 0x%08x%08x)", (k[0].effective >> CAP_NET_ADMIN) & 1 ? "NET_ADMIN " : "",
         (k[0].effective >> CAP_NET_RAW) & 1 ? "NET_RAW " : "", (k[0].effective >> CAP_KILL) & 1 ? "KILL" : "",
         (k[0].effective >> CAP_SETUID) & 1 ? " SETUID" : "", (k[0].effective >> CAP_SETGID) & 1 ? " SETGID" : "",
         (k[0].effective >> CAP_SYS_CHROOT) & 1 ? " SYS_CHROOT" : "", k[1].effective, k[0].effective);
}

/* ---------- the Resource launcher (docs/adr/0020-unprivileged-agent.md, addendum) ----------
 *
 * With --resource-uid netd gives the agent one end of a SOCK_SEQPACKET socketpair on fd 5
 * (HEARTLINE_LAUNCHER_FD=5, HEARTLINE_LAUNCHER=this binary). To run a Resource the agent
 * spawns `heartline-netd --run --launcher-fd=5 -- PROGRAM ARGS...` as an ordinary child; the
 * client sends one request on fd 5: a header, its cwd, argv and environment (NUL-terminated
 * strings) and, with SCM_RIGHTS, one end of a fresh socketpair (the connection) and its own
 * stdin, stdout and stderr. netd forks the Resource onto those: a new session (so its own
 * process group), netd's original signal mask, nice 0, no other fd, the resource uid/gid, no
 * capability in any set, no_new_privs, checked; then it execs with exactly that environment.
 * Over the connection netd sends "E message" (could not start it) and "X status" (its wait
 * status, once it exits); the client sends "S signo" (a SIGTERM/SIGINT/SIGHUP/SIGQUIT it got,
 * passed on to the Resource's process group). EOF on the connection (the client died: the
 * agent's timeout killed it, or the agent died) SIGKILLs the Resource's process group. All of
 * it is non-blocking in netd's loop: a launch is a recvmsg and a fork, never a wait. */

#define LAUNCHER_FD 5     /* the agent's end, HEARTLINE_LAUNCHER_FD */
#define MAX_LAUNCH 64     /* Resource processes started and not yet reaped */
#define LAUNCH_MAX 32768  /* longest request (header, cwd, argv, environment) */
#define LAUNCH_MAX_ARGS 1024
#define LAUNCH_MAX_ENV 64
#define LAUNCH_MAGIC "HLRUN1"

struct launch_hdr {
  char magic[8];
  uint32_t argc, envc;
};

static struct launch {
  int used;
  pid_t pid; /* also its process group and session */
  int conn;  /* -1 once the client is gone */
} launches[MAX_LAUNCH];
static int launcher_fd = -1; /* netd's end */
static char self_exe[4096];  /* this binary: the agent runs it as the client */
static sigset_t start_mask;  /* the signal mask netd started with: Resources get it back */
static union {
  char buf[LAUNCH_MAX];
  struct launch_hdr hdr;
} lreq;
static char *largv[LAUNCH_MAX_ARGS + 1], *lenv[LAUNCH_MAX_ENV + 1];

static void conn_send(int conn, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= (int)sizeof msg) n = (int)sizeof msg - 1;
  (void)send(conn, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A signal for the Resource's process group; before the child's setsid() the group does not
 * exist yet and the child alone gets it. */
static void launch_signal(const struct launch *l, int sig) {
  if (kill(-l->pid, sig) < 0 && errno == ESRCH) kill(l->pid, sig);
}

static void close_fds_from(int lowest, int keep) {
  if (keep > lowest) {
    if (syscall(SYS_close_range, (unsigned)lowest, (unsigned)keep - 1, 0) == 0 &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0)
      return;
  }
  struct rlimit rl;
  int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
  for (int fd = lowest; fd < max; fd++)
    if (fd != keep) close(fd);
}

/* The Resource, between fork and exec. Never returns. */
static void launch_child(int conn, int in, int o, int e, const char *cwd) {
  signal(SIGPIPE, SIG_DFL);
  sigprocmask(SIG_SETMASK, &start_mask, NULL);
  const char *step = "setsid";
  if (setsid() < 0) goto fail;
  (void)setpriority(PRIO_PROCESS, 0, 0); /* not netd's -10 */
  /* Out of the way first (10 and up: a received fd may be 0..2), then onto 0, 1, 2. */
  step = "setting up stdin, stdout and stderr";
  int c = fcntl(conn, F_DUPFD_CLOEXEC, 10), a = fcntl(in, F_DUPFD_CLOEXEC, 10), b = fcntl(o, F_DUPFD_CLOEXEC, 10),
      d = fcntl(e, F_DUPFD_CLOEXEC, 10);
  if (c < 0 || a < 0 || b < 0 || d < 0) goto fail;
  conn = c;
  if (dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(d, 2) < 0) goto fail;
  close_fds_from(3, conn); /* the agent's sockets, other Resources' pipes, netlink: none of it */
  /* The agent's identity check (`heartline-netd --self-status`) with --resource-root: this
   * binary is not inside the root, so the child answers it itself, after the same chroot and
   * drop as any Resource. /proc/self/status is opened first (the root may have no /proc); its
   * content is made at read time, so it shows the dropped process. */
  int status_fd = -1;
  if (resource_root && largv[1] && !largv[2] && !strcmp(largv[0], self_exe) && !strcmp(largv[1], "--self-status")) {
    step = "opening /proc/self/status";
    if ((status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0) goto fail;
  }
  if (resource_root) {
    step = "chroot to --resource-root (needs CAP_SYS_CHROOT)";
    if (chroot(resource_root) < 0 || chdir("/") < 0) goto fail;
  }
  if (drop_privileges(resource_user.uid, resource_user.gid, 1, &step) < 0) goto fail;
  step = "chdir to the working directory";
  if (chdir(cwd) < 0) goto fail;
  if (status_fd >= 0) {
    char buf[8192];
    ssize_t n;
    while ((n = read(status_fd, buf, sizeof buf)) > 0)
      if (write(1, buf, (size_t)n) != n) _exit(1);
    _exit(n < 0);
  }
  environ = lenv;
  execvp(largv[0], largv);
  conn_send(conn, "E %s: %s", largv[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
fail:
  conn_send(conn, "E --resource-uid=%u: %s failed: %s; Resource not started", (unsigned)resource_user.uid, step,
            strerror(errno));
  _exit(126);
}

/* Checks a request in lreq (n bytes): fills largv and lenv; returns the cwd, or NULL with why. */
static const char *launch_parse(size_t n, const char **why) {
  *why = "malformed request";
  if (n < sizeof lreq.hdr || memcmp(lreq.hdr.magic, LAUNCH_MAGIC, sizeof LAUNCH_MAGIC)) return NULL;
  uint32_t argc = lreq.hdr.argc, envc = lreq.hdr.envc;
  if (argc < 1 || argc > LAUNCH_MAX_ARGS) {
    *why = "want 1 to 1024 arguments";
    return NULL;
  }
  if (envc > LAUNCH_MAX_ENV) {
    *why = "want at most 64 environment variables";
    return NULL;
  }
  char *p = lreq.buf + sizeof lreq.hdr, *end = lreq.buf + n;
  const char *cwd = NULL;
  for (uint32_t i = 0; i < 1 + argc + envc; i++) {
    char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) return NULL;
    if (i == 0)
      cwd = p;
    else if (i <= argc)
      largv[i - 1] = p;
    else
      lenv[i - 1 - argc] = p;
    p = z + 1;
  }
  if (p != end) return NULL;
  largv[argc] = NULL;
  lenv[envc] = NULL;
  for (uint32_t i = 0; i < envc; i++)
    if (lenv[i][0] == '=' || !strchr(lenv[i], '=')) {
      *why = "an environment entry is not NAME=VALUE";
      return NULL;
    }
  if (cwd[0] != '/' || !largv[0][0]) {
    *why = "want an absolute working directory and a program";
    return NULL;
  }
  return cwd;
}

/* One request on the launcher socket, if any: starts the Resource or tells the client why not. */
static int launch_receive(void) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * 4)];
    struct cmsghdr align;
  } cbuf;
  struct iovec iov = {.iov_base = lreq.buf, .iov_len = sizeof lreq.buf};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
  ssize_t n = recvmsg(launcher_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  int fds[4], nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (nfds < 4)
        fds[nfds++] = fd;
      else
        close(fd);
    }
  }
  if (n == 0 && nfds == 0) return -1; /* every copy of the agent's end is closed */
  const char *why = "want one request of at most 32768 bytes with 4 file descriptors";
  const char *cwd = NULL;
  int type = 0;
  socklen_t tl = sizeof type;
  if (nfds == 4 && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
      getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_SEQPACKET)
    cwd = launch_parse((size_t)n, &why);
  struct launch *l = NULL;
  if (cwd) {
    for (int i = 0; i < MAX_LAUNCH && !l; i++)
      if (!launches[i].used) l = &launches[i];
    if (!l) why = "too many Resource processes at once (64 started and not yet exited); try again later";
  }
  pid_t pid = -1;
  if (l && (pid = fork()) == 0) launch_child(fds[0], fds[1], fds[2], fds[3], cwd);
  if (l && pid < 0) why = strerror(errno);
  if (pid < 0) {
    if (nfds >= 1) conn_send(fds[0], "E heartline-netd did not start it: %s", why);
    logmsg("launcher: refused a Resource: %s", why);
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return 0;
  }
  for (int i = 1; i < 4; i++) close(fds[i]);
  set_nonblock(fds[0]);
  l->used = 1;
  l->pid = pid;
  l->conn = fds[0];
  return 0;
}

/* The client's connection: a signal to pass on, or EOF (the client is gone: SIGKILL the group). */
static void launch_conn_event(struct launch *l) {
  char buf[64];
  ssize_t n = recv(l->conn, buf, sizeof buf - 1, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) {
    buf[n] = 0;
    long long sig;
    if (buf[0] == 'S' && buf[1] == ' ' && !parse_num(buf + 2, 1, 64, &sig) &&
        (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT))
      launch_signal(l, (int)sig);
    return;
  }
  launch_signal(l, SIGKILL);
  close(l->conn);
  l->conn = -1;
}

/* A child that is not the agent exited: if it was a Resource's first process, tell its client. */
static void launch_reaped(pid_t pid, int status) {
  for (int i = 0; i < MAX_LAUNCH; i++) {
    struct launch *l = &launches[i];
    if (!l->used || l->pid != pid) continue;
    if (l->conn >= 0) {
      conn_send(l->conn, "X %d", status);
      close(l->conn);
    }
    l->used = 0;
    return;
  }
}

/* netd is exiting: no Resource outlives it. */
static void launch_kill_all(void) {
  for (int i = 0; i < MAX_LAUNCH; i++)
    if (launches[i].used) launch_signal(&launches[i], SIGKILL);
}

/* Empties netd's own bounding set at start (CAP_SETPCAP), so that the agent and every Resource
 * inherit an empty one; netd keeps its permitted capabilities. Returns 0, or -1 after logging. */
static int empty_bounding_set(void) {
  for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      logmsg("--resource-uid: emptying the capability bounding set that Resources inherit failed: %s%s",
             strerror(errno), errno == EPERM ? " (needs CAP_SETPCAP)" : "");
      return -1;
    }
  return 0;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name, int *matched);

/* ---------- `heartline-netd --run`: the launcher's client, run by the agent ---------- */

static int run_usage(const char *why) {
  fprintf(stderr,
          "heartline-netd --run: %s\n"
          "usage: heartline-netd --run [--launcher-fd=N] -- PROGRAM ARGS...\n"
          "runs PROGRAM as a Resource through the heartline-netd that started the agent (fd N, default\n"
          "$HEARTLINE_LAUNCHER_FD), with this process's stdin, stdout, stderr, working directory and\n"
          "environment; exits with its status\n",
          why);
  return 125;
}

static int run_client(int argc, char **argv) {
  const char *fdspec = getenv("HEARTLINE_LAUNCHER_FD");
  int i = 2;
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    int m;
    const char *v = opt_value(argc, argv, &i, "--launcher-fd", &m);
    if (!m) return run_usage("unknown option");
    fdspec = v;
  }
  if (i >= argc - 1) return run_usage("no PROGRAM after --");
  long long lfd;
  if (!fdspec || parse_num(fdspec, 3, 1 << 20, &lfd))
    return run_usage("no launcher: want --launcher-fd=N or HEARTLINE_LAUNCHER_FD (heartline-netd --resource-uid sets it)");
  /* Die with the agent: netd then sees EOF and kills the Resource. */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) return 126;
  char **args = argv + i + 1;
  int nargs = argc - i - 1;
  if (nargs > LAUNCH_MAX_ARGS) return run_usage("more than 1024 arguments");
  int nenv = 0;
  while (environ[nenv]) nenv++;
  if (nenv > LAUNCH_MAX_ENV) return run_usage("more than 64 environment variables");
  static char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return run_usage("cannot read the working directory");
  memcpy(lreq.hdr.magic, LAUNCH_MAGIC, sizeof LAUNCH_MAGIC);
  lreq.hdr.argc = (uint32_t)nargs;
  lreq.hdr.envc = (uint32_t)nenv;
  size_t len = sizeof lreq.hdr;
  for (int k = -1; k < nargs + nenv; k++) {
    const char *str = k < 0 ? cwd : k < nargs ? args[k] : environ[k - nargs];
    size_t sl = strlen(str) + 1;
    if (len + sl > sizeof lreq.buf) return run_usage("arguments and environment longer than 32768 bytes");
    memcpy(lreq.buf + len, str, sl);
    len += sl;
  }
  for (int fd = 0; fd < 3; fd++) /* a closed stdio fd: /dev/null in its place */
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd) return 126;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return 126;
  int fds[4] = {sv[1], 0, 1, 2};
  union {
    char buf[CMSG_SPACE(sizeof fds)];
    struct cmsghdr align;
  } cbuf;
  memset(&cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = lreq.buf, .iov_len = len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGQUIT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  ssize_t r;
  do r = sendmsg((int)lfd, &m, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    fprintf(stderr, "heartline-netd --run: cannot reach heartline-netd on fd %lld: %s\n", lfd, strerror(errno));
    return 126;
  }
  close(sv[1]);
  close((int)lfd);
  int conn = sv[0], told = 0;
  for (;;) {
    struct pollfd p[2] = {{.fd = conn, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 126;
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "S %u", si.ssi_signo);
        (void)send(conn, msg, (size_t)n, MSG_NOSIGNAL);
      }
    }
    if (!p[0].revents) continue;
    char msg[640];
    ssize_t n = recv(conn, msg, sizeof msg - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!told) fprintf(stderr, "heartline-netd --run: heartline-netd closed the connection without an exit status\n");
      return 126;
    }
    msg[n] = 0;
    if (msg[0] == 'E') {
      told = 1;
      fprintf(stderr, "heartline-netd --run: %s\n", msg + 2);
      continue; /* the exit status follows if it was forked, else EOF */
    }
    long long st;
    if (msg[0] != 'X' || parse_num(msg + 2, INT32_MIN, INT32_MAX, &st)) continue;
    int status = (int)st;
    if (WIFSIGNALED(status)) { /* die the same way, so the agent sees the signal */
      int sig = WTERMSIG(status);
      struct rlimit none = {0, 0};
      setrlimit(RLIMIT_CORE, &none);
      signal(sig, SIG_DFL);
      sigprocmask(SIG_UNBLOCK, &mask, NULL);
      raise(sig);
      return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
  }
}

/* `heartline-netd --self-status`: prints /proc/self/status (the agent's check of the Resource
 * identity runs this through the launcher: the image has no cat). */
static int self_status(void) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (write(1, buf, (size_t)n) != n) return 1;
  return n < 0;
}

/* --exec mode: heartline-netd is the parent (PID 1 of the agent's container) and the agent
 * its child, talking over a socketpair on the agent's fd 3 (HEARTLINE_NETD_FD=3), with the
 * heartbeat socket on fd 4 (--heartbeat-bind). If the agent were PID 1 with heartline-netd
 * as its child, the agent's death would tear down the PID namespace and SIGKILL
 * heartline-netd before it could sweep. */
static int start_agent(char **argv, const sigset_t *oldmask) {
  int sv[2], lv[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  if (resource_user.set && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lv) < 0) return -errno;
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    /* Out of the way first (above 10), then onto 3 and 4: dup2 clears close-on-exec. */
    int a = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    int h = hb_fd >= 0 ? fcntl(hb_fd, F_DUPFD_CLOEXEC, 10) : -1;
    if (a < 0 || dup2(a, AGENT_FD) < 0) _exit(127);
    if (hb_fd >= 0 && (h < 0 || dup2(h, HEARTBEAT_FD) < 0)) _exit(127);
    int l = lv[1] >= 0 ? fcntl(lv[1], F_DUPFD_CLOEXEC, 10) : -1;
    if (lv[1] >= 0 && (l < 0 || dup2(l, LAUNCHER_FD) < 0)) _exit(127);
    if (lv[1] >= 0) {
      char u[16], g[16];
      snprintf(u, sizeof u, "%u", (unsigned)resource_user.uid);
      snprintf(g, sizeof g, "%u", (unsigned)resource_user.gid);
      setenv("HEARTLINE_LAUNCHER_FD", "5", 1);
      setenv("HEARTLINE_LAUNCHER", self_exe, 1);
      setenv("HEARTLINE_RESOURCE_UID", u, 1);
      setenv("HEARTLINE_RESOURCE_GID", g, 1);
    } else {
      unsetenv("HEARTLINE_LAUNCHER_FD");
      unsetenv("HEARTLINE_LAUNCHER");
      unsetenv("HEARTLINE_RESOURCE_UID");
      unsetenv("HEARTLINE_RESOURCE_GID");
    }
    setenv("HEARTLINE_NETD_FD", "3", 1);
    if (hb_fd >= 0) {
      setenv("HEARTLINE_HEARTBEAT_FD", "4", 1);
      setenv("HEARTLINE_HEARTBEAT_BIND", hb_bound, 1);
    } else {
      unsetenv("HEARTLINE_HEARTBEAT_FD");
      unsetenv("HEARTLINE_HEARTBEAT_BIND");
    }
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    /* Still root with netd's capabilities here: a negative nice needs CAP_SYS_NICE. Not fatal:
     * an agent at nice 0 is correct, only less punctual on a starved node. */
    if (agent_nice_set) {
      if (setpriority(PRIO_PROCESS, 0, agent_nice) == 0)
        logmsg("agent priority: nice %d", agent_nice);
      else
        logmsg("--agent-nice=%d: %s (needs CAP_SYS_NICE); the agent runs at nice 0", agent_nice, strerror(errno));
    }
    if (agent_user.set && drop_agent_privileges() < 0) _exit(126);
    execvp(argv[0], argv);
    logmsg("--exec %s: %s", argv[0], strerror(errno));
    _exit(127);
  }
  close(sv[1]);
  if (lv[1] >= 0) {
    close(lv[1]);
    launcher_fd = lv[0];
    set_nonblock(launcher_fd);
  }
  if (hb_fd >= 0) { /* the agent's now; netd never reads it */
    close(hb_fd);
    hb_fd = -1;
  }
  in_fd = out_fd = sv[0];
  agent_pid = pid;
  return 0;
}

/* Reaps every exited child (we may be PID 1). Returns the agent's wait status, or -1. */
static int reap(void) {
  int status, agent_status = -1;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    if (pid == agent_pid)
      agent_status = status;
    else
      launch_reaped(pid, status);
  return agent_status;
}

static int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int usage(void) {
  fprintf(stderr,
          "usage: heartline-netd [--owner-mode=M]                    requests on stdin, replies on stdout\n"
          "       heartline-netd [--owner-mode=M] --sweep-only       remove every Heartline address and exit\n"
          "       heartline-netd [--owner-mode=M] [--heartbeat-bind=ADDR:PORT [--heartbeat-rcvbuf=BYTES]]\n"
          "                      [--agent-uid=N [--agent-gid=G]]\n"
          "                      [--agent-state-dir=DIR] [--agent-nice=N] [--resource-uid=N [--resource-gid=G] [--resource-root=DIR]]\n"
          "                      --exec CMD ARGS...\n"
          "                      run CMD (the agent) as a child; requests on its fd 3, the heartbeat socket on fd 4,\n"
          "                      the Resource launcher on fd 5\n"
          "       heartline-netd --run [--launcher-fd=N] -- PROGRAM ARGS...   (the agent's launcher client)\n"
          "M: auto (default; or $HEARTLINE_NETD_OWNER_MODE), proto or fallback: how Heartline's addresses are\n"
          "marked (docs/fence.md). See the comment at the top of heartline-netd.c.\n");
  return 2;
}

/* "--name=value" or "--name value" at argv[*i]: the value, advancing *i; NULL if argv[*i] is
 * not --name, or has no value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *matched) {
  size_t n = strlen(name);
  *matched = 0;
  if (strncmp(argv[*i], name, n)) return NULL;
  if (argv[*i][n] == '=') {
    *matched = 1;
    return argv[*i] + n + 1;
  }
  if (argv[*i][n] == 0 && *i + 1 < argc) {
    *matched = 1;
    return argv[++*i];
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = getenv("HEARTLINE_NETD_OWNER_MODE"), *mode_from = "HEARTLINE_NETD_OWNER_MODE";
  const char *heartbeat_bind = NULL, *heartbeat_rcvbuf = NULL, *state_dir = NULL, *agent_gid = NULL, *agent_uid = NULL;
  const char *resource_uid = NULL, *resource_gid = NULL, *root_dir = NULL;
  if (argc > 1 && !strcmp(argv[1], "--run")) return run_client(argc, argv);
  if (argc == 2 && !strcmp(argv[1], "--self-status")) return self_status();
  int argi = 1;
  for (; argi < argc && !strncmp(argv[argi], "--", 2) && strcmp(argv[argi], "--exec") &&
         strcmp(argv[argi], "--sweep-only");
       argi++) {
    int m;
    const char *v;
    if ((v = opt_value(argc, argv, &argi, "--owner-mode", &m)) || m) {
      mode = v;
      mode_from = "--owner-mode";
    } else if ((v = opt_value(argc, argv, &argi, "--heartbeat-bind", &m)) || m) {
      heartbeat_bind = v;
    } else if ((v = opt_value(argc, argv, &argi, "--heartbeat-rcvbuf", &m)) || m) {
      heartbeat_rcvbuf = v ? v : "";
      if (!v || parse_num(v, 65536, 268435456, &hb_rcvbuf)) {
        logmsg("--heartbeat-rcvbuf=%s: want bytes from 65536 to 268435456, e.g. 2097152", v ? v : "");
        return 2;
      }
    } else if ((v = opt_value(argc, argv, &argi, "--agent-uid", &m)) || m) {
      agent_uid = v;
    } else if ((v = opt_value(argc, argv, &argi, "--agent-gid", &m)) || m) {
      agent_gid = v;
    } else if ((v = opt_value(argc, argv, &argi, "--agent-state-dir", &m)) || m) {
      state_dir = v;
    } else if ((v = opt_value(argc, argv, &argi, "--resource-uid", &m)) || m) {
      resource_uid = v;
    } else if ((v = opt_value(argc, argv, &argi, "--resource-gid", &m)) || m) {
      resource_gid = v;
    } else if ((v = opt_value(argc, argv, &argi, "--resource-root", &m)) || m) {
      root_dir = v;
    } else if ((v = opt_value(argc, argv, &argi, "--agent-nice", &m)) || m) {
      char *end = NULL;
      long n = v ? strtol(v, &end, 10) : 0;
      if (!v || !*v || *end || n < -20 || n > 19) {
        logmsg("--agent-nice=%s: want a nice value from -20 to 19, e.g. -10", v ? v : "");
        return 2;
      }
      agent_nice = (int)n;
      agent_nice_set = 1;
    } else {
      return usage();
    }
  }
  if (!mode || !*mode) mode = "auto";
  if (strcmp(mode, "auto") && strcmp(mode, "proto") && strcmp(mode, "fallback")) {
    logmsg("%s=%s: want auto, proto or fallback", mode_from, mode);
    return 2;
  }
  if (agent_uid) {
    unsigned u, g;
    if (parse_id(agent_uid, &u)) {
      logmsg("--agent-uid=%s: want a numeric uid other than 0, e.g. 65532", agent_uid);
      return 2;
    }
    if (agent_gid && parse_id(agent_gid, &g)) {
      logmsg("--agent-gid=%s: want a numeric gid other than 0, e.g. 65532", agent_gid);
      return 2;
    }
    agent_user.set = 1;
    agent_user.uid = (uid_t)u;
    agent_user.gid = (gid_t)(agent_gid ? g : u);
  } else if (agent_gid || state_dir) {
    logmsg("%s needs --agent-uid", agent_gid ? "--agent-gid" : "--agent-state-dir");
    return 2;
  }
  if (resource_uid) {
    unsigned u, g;
    if (!agent_user.set) {
      logmsg("--resource-uid needs --agent-uid (netd starts Resources for an unprivileged agent)");
      return 2;
    }
    if (parse_id(resource_uid, &u) || u == agent_user.uid) {
      logmsg("--resource-uid=%s: want a numeric uid other than 0 and other than --agent-uid, e.g. 65534",
             resource_uid);
      return 2;
    }
    if (resource_gid && (parse_id(resource_gid, &g) || g == agent_user.gid)) {
      logmsg("--resource-gid=%s: want a numeric gid other than 0 and other than the agent's, e.g. 65534",
             resource_gid);
      return 2;
    }
    if (!resource_gid && u == agent_user.gid) {
      logmsg("--resource-uid=%s: the gid defaults to it and it is the agent's gid: set --resource-gid", resource_uid);
      return 2;
    }
    resource_user.set = 1;
    resource_user.uid = (uid_t)u;
    resource_user.gid = (gid_t)(resource_gid ? g : u);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0 || n >= (ssize_t)sizeof self_exe - 1) {
      logmsg("--resource-uid: cannot read /proc/self/exe (the agent runs this binary to start Resources)");
      return 1;
    }
    self_exe[n] = 0;
  } else if (resource_gid) {
    logmsg("--resource-gid needs --resource-uid");
    return 2;
  }
  if (root_dir) {
    struct stat st;
    if (!resource_user.set) {
      logmsg("--resource-root needs --resource-uid (it is where Resources run)");
      return 2;
    }
    if (root_dir[0] != '/' || stat(root_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
      logmsg("--resource-root=%s: want the absolute path of a directory (the node's root filesystem, "
             "e.g. a read-only hostPath of / mounted at /host)",
             root_dir);
      return 2;
    }
    /* Fail at start, not at every Resource's start. */
    if (!has_cap(CAP_SYS_CHROOT)) {
      logmsg("--resource-root=%s: needs CAP_SYS_CHROOT to start Resources there (add SYS_CHROOT "
             "to the container's capabilities)",
             root_dir);
      return 1;
    }
    resource_root = root_dir;
  }
  int sweep_only = argc - argi == 1 && !strcmp(argv[argi], "--sweep-only");
  int exec_mode = argc - argi > 1 && !strcmp(argv[argi], "--exec");
  if (argi < argc && !sweep_only && !exec_mode) return usage();
  if (heartbeat_rcvbuf && !heartbeat_bind) {
    logmsg("--heartbeat-rcvbuf needs --heartbeat-bind (it sizes the socket netd binds for the agent)");
    return 2;
  }
  if ((heartbeat_bind || agent_user.set) && !exec_mode) {
    logmsg("--heartbeat-bind and --agent-uid are for --exec (they concern the agent netd starts)");
    return 2;
  }
  if (nl_open() < 0) {
    logmsg("cannot open rtnetlink: %s", strerror(errno));
    return 1;
  }
  ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  /* A sweep recognises both marks and adds nothing: it needs no owner mode. */
  if (!sweep_only && choose_owner_mode(mode) < 0) return 1;
  if (sweep_only) {
    out_start("");
    out_add("OK");
    int err = sweep_all(1);
    out_end();
    if (err) logmsg("sweep failed: %s", strerror(-err));
    return err ? 1 : 0;
  }

  signal(SIGPIPE, SIG_IGN);
  sigset_t mask, oldmask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (exec_mode) sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, &oldmask);
  start_mask = oldmask;
  int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) {
    logmsg("signalfd: %s", strerror(errno));
    return 1;
  }
  if (heartbeat_bind && bind_heartbeat(heartbeat_bind) < 0) return 1;
  if (state_dir && prepare_state_dir(state_dir) < 0) return 1;
  if (resource_user.set && empty_bounding_set() < 0) return 1;
  if (exec_mode) {
    int err = start_agent(argv + argi + 1, &oldmask);
    if (err) {
      logmsg("--exec %s: %s", argv[argi + 1], strerror(-err));
      return 1;
    }
  }
  set_nonblock(in_fd);
  set_nonblock(out_fd);
  set_nonblock(2);
#ifndef __SANITIZE_ADDRESS__ /* ASan's shadow memory cannot be locked */
  int locked = mlockall(MCL_CURRENT | MCL_FUTURE) == 0; /* best effort: the fence must not wait for swap */
#else
  int locked = 0;
#endif
  /* Best effort (needs CAP_SYS_NICE): on a starved CPU a deadline fired tens of ms late
   * was seen in the lab; the fence should win the CPU over the agent and the workload. A
   * real-time class bounds the wake-up delay by the kernel, not by the load (SCHED_FIFO 10:
   * above every normal task, below the kernel's own RT threads; reset on fork, so Resources
   * and the agent never inherit it). Failing that, nice -10. Set after --exec started the
   * agent, which keeps the default priority. The fence delay budget (docs/adr/0036) assumes
   * one of these; the class is logged so that an operator can tell. */
  {
#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
    struct sched_param sp = {.sched_priority = 10};
    const char *cls = "SCHED_FIFO 10";
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) != 0)
      cls = setpriority(PRIO_PROCESS, 0, -10) == 0 ? "nice -10 (no SCHED_FIFO: needs CAP_SYS_NICE)"
                                                   : "normal (no CAP_SYS_NICE: fence deadlines may fire late under load)";
    logmsg("fence priority: %s; memory %s", cls, locked ? "locked" : "not locked (no CAP_IPC_LOCK)");
  }
  if (exec_mode && agent_user.set) keep_netd_capabilities();

  static char in[IN_MAX];
  size_t inlen = 0;
  int discarding = 0, in_open = 1;
  for (;;) {
    int64_t now = now_ns();
    fire_deadlines(now);
    run_announces(now);
    if (out_broken && in_open) {
      if (!exec_mode) return fence_and_exit("stdout closed");
      fence_and_exit("agent socket broken");
      in_open = 0;
    }

    struct pollfd p[3 + MAX_LAUNCH] = {{.fd = in_open ? in_fd : -1, .events = POLLIN},
                                       {.fd = sig_fd, .events = POLLIN},
                                       {.fd = launcher_fd, .events = POLLIN}};
    for (int i = 0; i < MAX_LAUNCH; i++) {
      p[3 + i].fd = launches[i].used ? launches[i].conn : -1;
      p[3 + i].events = POLLIN;
    }
    int64_t next = next_wakeup();
    struct timespec ts, *tsp = NULL;
    if (next != INT64_MAX) {
      int64_t d = next - now_ns();
      if (d < 0) d = 0;
      ts.tv_sec = d / 1000000000LL;
      ts.tv_nsec = d % 1000000000LL;
      tsp = &ts;
    }
    int r = ppoll(p, 3 + MAX_LAUNCH, tsp, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      logmsg("ppoll: %s", strerror(errno));
      return fence_and_exit("ppoll failed");
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig != SIGCHLD && !exec_mode) return fence_and_exit(strsignal(sig));
        if (sig != SIGCHLD) { /* let the agent release its addresses, then fence on its exit */
          logmsg("%s: passing it to the agent (pid %d)", strsignal(sig), (int)agent_pid);
          kill(agent_pid, sig);
          continue;
        }
        int status = reap();
        if (status >= 0) {
          char why[96];
          snprintf(why, sizeof why, "agent (pid %d) exited with status %d", (int)agent_pid, exit_code(status));
          fence_and_exit(why);
          launch_kill_all();
          return exit_code(status);
        }
      }
    }
    /* Launches after signals (a reaped Resource's slot is free again), and bounded: one request
     * per turn of the loop, so that deadlines are checked between any two. */
    if (launcher_fd >= 0 && p[2].revents && launch_receive() < 0) {
      close(launcher_fd);
      launcher_fd = -1;
    }
    for (int i = 0; i < MAX_LAUNCH; i++)
      if (p[3 + i].revents && launches[i].used && launches[i].conn == p[3 + i].fd) launch_conn_event(&launches[i]);
    if (!in_open || !p[0].revents) continue;
    /* The fence first: a RENEW that arrives after its deadline must not extend it. */
    fire_deadlines(now_ns());
    ssize_t got = read(in_fd, in + inlen, sizeof in - inlen);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) {
      const char *why = got == 0 ? "stdin closed (agent gone)" : "stdin read failed";
      if (!exec_mode) return fence_and_exit(why);
      fence_and_exit(got == 0 ? "agent closed its socket" : "agent socket read failed");
      in_open = 0;
      shutdown(in_fd, SHUT_RDWR); /* the agent's close() returns once this EOF reaches it */
      continue; /* keep reaping until the agent exits */
    }
    inlen += (size_t)got;
    char *start = in, *nl;
    while ((nl = memchr(start, '\n', inlen - (size_t)(start - in)))) {
      *nl = 0;
      if (!discarding) handle_line(start);
      discarding = 0;
      start = nl + 1;
    }
    inlen -= (size_t)(start - in);
    memmove(in, start, inlen);
    if (inlen == sizeof in) { /* a line longer than IN_MAX: drop it up to its newline */
      if (!discarding) reply_err("-", "request longer than %d bytes", IN_MAX);
      discarding = 1;
      inlen = 0;
    }
  }
}
