/* SPDX-License-Identifier: Apache-2.0 */
/* The C floor of bench row 0: one thread, one client at a time, answering each libvirt call frame with the reply recorded
 * from virtgate for the same (program, procedure, call body) (or the first recorded for that procedure), the call's serial
 * patched in; keepalive PING gets PONG; a procedure never recorded closes the connection. Table format: bench/floor/table.ts.
 * usage: echo TABLE UNIX_SOCKET [CERT KEY CA]   (with CERT..., built -DWITH_GNUTLS: also mutual TLS on a loopback port)
 * prints {"tls":PORT} (or {}) once listening. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef WITH_GNUTLS
#include <gnutls/gnutls.h>
#endif

#define KEEPALIVE 0x6b656570u
#define MAX_FRAME (32u << 20)

struct canned {
    uint32_t prog, proc, blen, rlen;
    const unsigned char *body, *reply;
};
static struct canned *table;
static size_t ntable;

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void load(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) { perror(file); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = malloc(n);
    if (n < 8 || fread(buf, 1, n, f) != (size_t)n || memcmp(buf, "VGFT", 4) != 0) { fprintf(stderr, "bad table %s\n", file); exit(1); }
    fclose(f);
    ntable = be32(buf + 4);
    table = calloc(ntable, sizeof(*table));
    long at = 8;
    for (size_t i = 0; i < ntable; i++) {
        struct canned *c = &table[i];
        if (at + 12 > n) goto bad;
        c->prog = be32(buf + at); c->proc = be32(buf + at + 4); c->blen = be32(buf + at + 8); at += 12;
        c->body = buf + at; at += c->blen;
        if (at + 4 > n) goto bad;
        c->rlen = be32(buf + at); at += 4;
        c->reply = buf + at; at += c->rlen;
        if (at > n || c->rlen < 28) goto bad;
    }
    return;
bad:
    fprintf(stderr, "truncated table %s\n", file);
    exit(1);
}

/* The canned reply for the call frame f of len bytes, or NULL. */
static const struct canned *lookup(const unsigned char *f, uint32_t len)
{
    uint32_t prog = be32(f + 4), proc = be32(f + 12);
    const struct canned *first = NULL;
    for (size_t i = 0; i < ntable; i++) {
        const struct canned *c = &table[i];
        if (c->prog != prog || c->proc != proc) continue;
        if (c->blen == len - 28 && memcmp(c->body, f + 28, c->blen) == 0) return c;
        if (!first) first = c;
    }
    return first;
}

static const unsigned char PONG[28] = { 0, 0, 0, 28, 0x6b, 0x65, 0x65, 0x70, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2 };

/* One connection's I/O: plain fd, or a TLS session. */
struct conn {
    int fd;
#ifdef WITH_GNUTLS
    gnutls_session_t tls;
#endif
};

static ssize_t cread(struct conn *c, void *b, size_t n)
{
#ifdef WITH_GNUTLS
    if (c->tls) {
        ssize_t r;
        do r = gnutls_record_recv(c->tls, b, n); while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
        return r;
    }
#endif
    return read(c->fd, b, n);
}

static int cwrite(struct conn *c, const void *b, size_t n)
{
    const unsigned char *p = b;
    while (n > 0) {
        ssize_t w;
#ifdef WITH_GNUTLS
        if (c->tls) w = gnutls_record_send(c->tls, p, n); else
#endif
        w = write(c->fd, p, n);
        if (w <= 0) return -1;
        p += w; n -= w;
    }
    return 0;
}

static void serve(struct conn *c)
{
    size_t cap = 1 << 20, have = 0;
    unsigned char *buf = malloc(cap), *out = malloc(cap);
    size_t outcap = cap;
    for (;;) {
        ssize_t r = cread(c, buf + have, cap - have);
        if (r <= 0) break;
        have += r;
        size_t off = 0;
        while (have - off >= 4) {
            uint32_t len = be32(buf + off);
            if (len < 28 || len > MAX_FRAME) goto done;
            if (have - off < len) {
                if (len > cap) { cap = len; buf = realloc(buf, cap); }
                break;
            }
            const unsigned char *f = buf + off;
            if (be32(f + 4) == KEEPALIVE) {
                if (be32(f + 12) == 1 && cwrite(c, PONG, 28) < 0) goto done;
            } else {
                const struct canned *k = lookup(f, len);
                if (!k) goto done;
                if (k->rlen > outcap) { outcap = k->rlen; out = realloc(out, outcap); }
                memcpy(out, k->reply, k->rlen);
                memcpy(out + 20, f + 20, 4); /* the call's serial */
                if (cwrite(c, out, k->rlen) < 0) goto done;
            }
            off += len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
done:
    free(buf);
    free(out);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6) { fprintf(stderr, "usage: %s TABLE UNIX_SOCKET [CERT KEY CA]\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);
    load(argv[1]);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[2]);
    unlink(argv[2]);
    int ufd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ufd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(ufd, 16) < 0) { perror(argv[2]); return 1; }
    int tfd = -1, port = 0;
#ifdef WITH_GNUTLS
    gnutls_certificate_credentials_t creds = NULL;
    if (argc == 6) {
        gnutls_global_init();
        gnutls_certificate_allocate_credentials(&creds);
        if (gnutls_certificate_set_x509_key_file(creds, argv[3], argv[4], GNUTLS_X509_FMT_PEM) < 0 ||
            gnutls_certificate_set_x509_trust_file(creds, argv[5], GNUTLS_X509_FMT_PEM) < 0) {
            fprintf(stderr, "cannot load %s, %s, %s\n", argv[3], argv[4], argv[5]);
            return 1;
        }
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sin);
        tfd = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(tfd, (struct sockaddr *)&sin, sl) < 0 || listen(tfd, 16) < 0 || getsockname(tfd, (struct sockaddr *)&sin, &sl) < 0) { perror("tls listener"); return 1; }
        port = ntohs(sin.sin_port);
    }
#endif
    if (port) printf("{\"tls\":%d}\n", port); else printf("{}\n");
    fflush(stdout);
    struct pollfd pfd[2] = { { ufd, POLLIN, 0 }, { tfd, POLLIN, 0 } };
    for (;;) {
        if (poll(pfd, tfd >= 0 ? 2 : 1, -1) < 0) continue;
        int tls = tfd >= 0 && (pfd[1].revents & POLLIN);
        int fd = accept(tls ? tfd : ufd, NULL, NULL);
        if (fd < 0) continue;
        struct conn c = { .fd = fd };
#ifdef WITH_GNUTLS
        if (tls) {
            int one = 1, r;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            gnutls_init(&c.tls, GNUTLS_SERVER);
            gnutls_set_default_priority(c.tls);
            gnutls_credentials_set(c.tls, GNUTLS_CRD_CERTIFICATE, creds);
            gnutls_certificate_server_set_request(c.tls, GNUTLS_CERT_REQUEST); /* as libvirtd and virtgate: ask for the client's */
            gnutls_transport_set_int(c.tls, fd);
            do r = gnutls_handshake(c.tls); while (r < 0 && !gnutls_error_is_fatal(r));
            static const unsigned char confirm = 1; /* libvirt's one-byte confirmation */
            if (r == 0 && gnutls_record_send(c.tls, &confirm, 1) == 1) serve(&c);
            gnutls_deinit(c.tls);
        } else
#endif
            serve(&c);
        close(fd);
    }
}
