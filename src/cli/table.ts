// SPDX-License-Identifier: Apache-2.0
// virsh-shaped text output for the CLI (tables, key/value blocks, event lines), pure: values in, strings out.
import {
  type DomainInfo,
  type LifecycleEvent,
  type NodeInfo,
  type RemoteDomain,
  lifecycleDetailName,
  lifecycleEventName,
  stateName,
  uuidToString,
} from '../client';

const PADDING = 3; // virsh vshTable: three spaces between columns

// vshTablePrint: one leading space per row, left-aligned columns, a dashed rule under the header.
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => ' ' + cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i] + PADDING) : c)).join('');
  const rule = '-'.repeat(widths.reduce((n, w) => n + w + PADDING, 0));
  return [line(header), rule, ...rows.map(line)].join('\n') + '\n';
}

// virsh sorts active domains by id, then inactive ones by name.
export function sortDomains(doms: readonly RemoteDomain[]): RemoteDomain[] {
  return [...doms].sort((a, b) => {
    if (a.id !== -1 && b.id !== -1) return a.id - b.id;
    if (a.id !== -1) return -1;
    if (b.id !== -1) return 1;
    return a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0;
  });
}

export function formatDomainId(id: number): string {
  return id === -1 ? '-' : String(id);
}

export function formatDomainList(rows: readonly { dom: RemoteDomain; state: number }[]): string {
  return (
    formatTable(
      ['Id', 'Name', 'State'],
      rows.map(({ dom, state }) => [formatDomainId(dom.id), dom.name, stateName(state)]),
    ) + '\n'
  );
}

// "%-15s %s" (dominfo) and "%-20s %s" (nodeinfo).
export function formatFields(fields: readonly [string, string][], width: number): string {
  return fields.map(([k, v]) => `${k.padEnd(width)} ${v}`).join('\n') + '\n';
}

export interface DomInfoExtras {
  osType?: string;
  persistent?: boolean;
  autostart?: boolean;
  managedSave?: boolean;
  security?: { model: string; doi: string; label?: { label: string; enforcing: boolean } };
}

// Lines virsh cannot fill (an optional call failed) are omitted or say "unknown", as cmdDominfo does.
export function formatDomInfo(dom: RemoteDomain, info: DomainInfo, x: DomInfoExtras): string {
  const yn = (v: boolean | undefined): string => (v === undefined ? 'unknown' : v ? 'yes' : 'no');
  const f: [string, string][] = [
    ['Id:', formatDomainId(dom.id)],
    ['Name:', dom.name],
    ['UUID:', uuidToString(dom.uuid)],
  ];
  if (x.osType !== undefined) f.push(['OS Type:', x.osType]);
  f.push(['State:', stateName(info.state)], ['CPU(s):', String(info.nrVirtCpu)]);
  if (info.cpuTime !== 0n) f.push(['CPU time:', `${(Number(info.cpuTime) / 1e9).toFixed(1)}s`]);
  f.push(['Max memory:', `${info.maxMem} KiB`], ['Used memory:', `${info.memory} KiB`], ['Persistent:', yn(x.persistent)]);
  if (x.autostart !== undefined) f.push(['Autostart:', x.autostart ? 'enable' : 'disable']);
  f.push(['Managed save:', yn(x.managedSave)]);
  if (x.security && x.security.model !== '') {
    f.push(['Security model:', x.security.model], ['Security DOI:', x.security.doi]);
    if (x.security.label) f.push(['Security label:', `${x.security.label.label} (${x.security.label.enforcing ? 'enforcing' : 'permissive'})`]);
  }
  return formatFields(f, 15) + '\n';
}

export function formatNodeInfo(n: NodeInfo): string {
  return (
    formatFields(
      [
        ['CPU model:', n.model],
        ['CPU(s):', String(n.cpus)],
        ['CPU frequency:', `${n.mhz} MHz`],
        ['CPU socket(s):', String(n.sockets)],
        ['Core(s) per socket:', String(n.cores)],
        ['Thread(s) per core:', String(n.threads)],
        ['NUMA cell(s):', String(n.nodes)],
        ['Memory size:', `${n.memory} KiB`],
      ],
      20,
    ) + '\n'
  );
}

export function formatLifecycleEvent(e: LifecycleEvent): string {
  return `event 'lifecycle' for domain '${e.dom.name}': ${lifecycleEventName(e.event)} ${lifecycleDetailName(e.event, e.detail)}\n`;
}
