// SPDX-License-Identifier: Apache-2.0
// A daemon's Prometheus text from its metrics socket (HOME/run/metrics-sock; docs/metrics.md), as a scraper gets it.
import http from 'node:http';
import path from 'node:path';

export function scrapeMetrics(home: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path.join(home, 'run', 'metrics-sock'), path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`metrics: HTTP ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
  });
}

// The value of one series (exact name and labels as printed), or null when absent.
export function seriesValue(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}
