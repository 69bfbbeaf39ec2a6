/* SPDX-License-Identifier: Apache-2.0 */
/* libvirt C API client for interop tests and the seed benchmark: virDomainGetInfo in a loop over every running guest.
 * usage: getinfo URI ITERATIONS [THREADS]   (threads share one connection, as virt-manager's do)
 * prints one JSON line: {"calls":N,"seconds":S,"guests":G,"threads":T} */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
