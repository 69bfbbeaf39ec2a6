/* SPDX-License-Identifier: Apache-2.0 */
/* libvirt C API client for interop tests and the seed benchmark: virDomainGetInfo in a loop over every running guest.
 * usage: getinfo URI ITERATIONS [THREADS]   (threads share one connection, as virt-manager's do)
 *        getinfo URI ITERATIONS 1 NDOMS     bulk stats (`virsh domstats`): starts NDOMS transient guests, then
 *                                           ITERATIONS virConnectGetAllDomainStats calls, then destroys them
 * prints one JSON line: {"calls":N,"seconds":S,"guests":G,"threads":T} */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct job {
    virDomainPtr *doms;
    int ndoms;
    long iterations;
    long failures;
};

static void *worker(void *arg)
{
    struct job *job = arg;
    virDomainInfo info;
    for (long i = 0; i < job->iterations; i++) {
        for (int d = 0; d < job->ndoms; d++) {
            if (virDomainGetInfo(job->doms[d], &info) < 0)
                job->failures++;
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bulk stats: every call must return at least the NDOMS guests started here. */
static int bulk_stats(virConnectPtr conn, long iterations, int ndoms)
{
    virDomainPtr *mine = calloc(ndoms, sizeof(*mine));
    char xml[512];
    int started = 0, rc = 1;
    for (int i = 0; i < ndoms; i++) {
        snprintf(xml, sizeof(xml),
                 "<domain type='test'><name>bench-stats-%d-%d</name><memory unit='MiB'>64</memory>"
                 "<vcpu>1</vcpu><os><type>hvm</type></os></domain>", (int)getpid(), i);
        if (!(mine[i] = virDomainCreateXML(conn, xml, 0))) {
            fprintf(stderr, "cannot start guest %d: %s\n", i, virGetLastErrorMessage());
            goto out;
        }
        started++;
    }
    long failures = 0;
    int seen = 0;
    double t0 = now();
    for (long i = 0; i < iterations; i++) {
        virDomainStatsRecordPtr *recs = NULL;
        int n = virConnectGetAllDomainStats(conn, 0, &recs, 0);
        if (n < ndoms)
            failures++;
        seen = n;
        if (n >= 0)
            virDomainStatsRecordListFree(recs);
    }
    double secs = now() - t0;
    printf("{\"calls\":%ld,\"seconds\":%.6f,\"guests\":%d,\"threads\":1,\"failures\":%ld}\n", iterations, secs, seen, failures);
    rc = failures ? 1 : 0;
out:
    for (int i = 0; i < started; i++) {
        virDomainDestroy(mine[i]);
        virDomainFree(mine[i]);
    }
    free(mine);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s URI ITERATIONS [THREADS]\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[2]);
    int nthreads = argc > 3 ? atoi(argv[3]) : 1;
    if (iterations < 0 || nthreads < 1 || nthreads > 256) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    virConnectPtr conn = virConnectOpen(argv[1]);
    if (!conn) {
        fprintf(stderr, "cannot connect to %s: %s\n", argv[1], virGetLastErrorMessage());
        return 1;
    }
    if (argc > 4) {
        int ndoms = atoi(argv[4]);
        if (ndoms < 1 || ndoms > 10000) {
            fprintf(stderr, "bad NDOMS\n");
            return 2;
        }
        int rc = bulk_stats(conn, iterations, ndoms);
        virConnectClose(conn);
        return rc;
    }
    virDomainPtr *doms = NULL;
    int ndoms = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (ndoms < 0) {
        fprintf(stderr, "cannot list domains: %s\n", virGetLastErrorMessage());
        return 1;
    }
    struct job *jobs = calloc(nthreads, sizeof(*jobs));
    pthread_t *threads = calloc(nthreads, sizeof(*threads));
    double t0 = now();
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (struct job){ doms, ndoms, iterations / nthreads, 0 };
        pthread_create(&threads[t], NULL, worker, &jobs[t]);
    }
    long failures = 0, calls = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(threads[t], NULL);
        failures += jobs[t].failures;
        calls += jobs[t].iterations * ndoms;
    }
    double secs = now() - t0;
    printf("{\"calls\":%ld,\"seconds\":%.6f,\"guests\":%d,\"threads\":%d,\"failures\":%ld}\n", calls, secs, ndoms, nthreads, failures);
    for (int d = 0; d < ndoms; d++)
        virDomainFree(doms[d]);
    free(doms);
    free(jobs);
    free(threads);
    virConnectClose(conn);
    return failures ? 1 : 0;
}
