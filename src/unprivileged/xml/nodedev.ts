// SPDX-License-Identifier: Apache-2.0
// Node device XML (front end): a client's creation XML -> the typed vHBA request the helper acts on (libvirt 9.0
// node_device_conf.c rules for CREATE_DEVICE), and NodeDevDef -> the exact text virNodeDeviceDefFormat writes.
import { VG_ERR_DOMAIN_INTERNAL } from '../../common/errors';
import { HOST_NAME_RULE, HostLimits, type NodeDevDef, type VhbaRequest, isHostObjectName, isWwn, uuidToString } from '../../ipc/objects/host-objects';
import { type XmlNode, all, attr, escapeXml, first, parseRoot, propEnum, textOf, xmlError } from './interface';

// virNodeDevCapType names (libvirt 9.0), in enum order.
export const NODEDEV_CAP_TYPES = [
  'system',
  'pci',
  'usb_device',
  'usb',
  'net',
  'scsi_host',
  'scsi_target',
  'scsi',
  'storage',
  'fc_host',
  'vports',
  'scsi_generic',
  'drm',
  'mdev_types',
  'mdev',
  'ccw',
  'css',
  'vdpa',
  'ap_card',
  'ap_queue',
  'ap_matrix',
  'vpd',
] as const;
export type NodeDevCapType = (typeof NODEDEV_CAP_TYPES)[number];

const NEW_DEVICE = 'new device'; // the name libvirt gives a device while it parses a creation request
const internal = (detail: string) => VG_ERR_DOMAIN_INTERNAL(detail);

function wwnText(n: XmlNode | undefined, what: string): string | null {
  const t = textOf(n);
  if (t === null) return null;
  const v = t.trim();
  if (!isWwn(v)) throw internal(`Malformed wwn: ${v} (${what})`);
  return v;
}

function wwnAttr(n: XmlNode, name: string): string | null {
  const v = attr(n, name);
  if (v === null || v === '') return null;
  if (!isWwn(v)) throw internal(`Malformed wwn: ${v} (parent ${name})`);
  return v;
}

// virNodeDeviceDefParse(CREATE_DEVICE) followed by virNodeDeviceGetWWNs: only an fc_host scsi_host can be created.
export function parseNodeDeviceCreateXml(xml: string): VhbaRequest {
  const root = parseRoot(xml, 'device', '(node_device_definition)');
  for (const dn of all(root, 'devnode')) propEnum(dn, 'type', ['dev', 'link'] as const, true);
  const parentNode = first(root, 'parent');
  const parentText = textOf(parentNode);
  const parent = parentText === null ? null : parentText.trim();
  if (parent !== null && !isHostObjectName(parent)) throw internal(`Could not find parent device for '${NEW_DEVICE}' (${HOST_NAME_RULE})`);
  const parentWwnn = parentNode ? wwnAttr(parentNode, 'wwnn') : null;
  const parentWwpn = parentNode ? wwnAttr(parentNode, 'wwpn') : null;
  if (parentWwnn !== null && parentWwpn === null) throw xmlError(`when providing parent wwnn='${parentWwnn}', the wwpn must also be provided`);
  if (parentWwnn === null && parentWwpn !== null) throw xmlError(`when providing parent wwpn='${parentWwpn}', the wwnn must also be provided`);
  const parentFabricWwn = parentNode ? wwnAttr(parentNode, 'fabric_wwn') : null;

  const caps = all(root, 'capability');
  if (caps.length === 0) throw internal(`no device capabilities for '${NEW_DEVICE}'`);
  if (caps.length > HostLimits.CAPS_MAX) throw xmlError(`more than ${HostLimits.CAPS_MAX} capabilities`);
  let fc: { wwnn: string; wwpn: string } | null = null;
  for (const cap of caps) {
    const type = propEnum(cap, 'type', NODEDEV_CAP_TYPES, true)!;
    if (type === 'fc_host' || type === 'vports' || type === 'scsi_generic' || type === 'vdpa' || type === 'vpd' || type === 'mdev_types') {
      throw internal(`unknown capability type '${NODEDEV_CAP_TYPES.indexOf(type)}' for '${NEW_DEVICE}'`);
    }
    if (type === 'system') {
      const uuid = textOf(first(first(cap, 'hardware') ?? {}, 'uuid'));
      if (uuid === null) throw internal(`no system UUID supplied for '${NEW_DEVICE}'`);
      continue;
    }
    if (type !== 'scsi_host') continue; // parsed by libvirt, then refused below: only an fc_host can be created
    for (const sub of all(cap, 'capability')) {
      const st = attr(sub, 'type');
      if (st === null) throw internal(`missing SCSI host capability type for '${NEW_DEVICE}'`);
      if (st === 'vport_ops') continue;
      if (st !== 'fc_host') throw internal(`unknown SCSI host capability type '${st}' for '${NEW_DEVICE}'`);
      // libvirt would generate a WWN for the device's virt type; creation requests carry none, so generation fails.
      const wwnn = wwnText(first(sub, 'wwnn'), 'wwnn');
      if (wwnn === null) throw internal(`no WWNN supplied for '${NEW_DEVICE}', and auto-generation failed`);
      const wwpn = wwnText(first(sub, 'wwpn'), 'wwpn');
      if (wwpn === null) throw internal(`no WWPN supplied for '${NEW_DEVICE}', and auto-generation failed`);
      wwnText(first(sub, 'fabric_wwn'), 'fabric_wwn');
      fc ??= { wwnn, wwpn };
    }
  }
  if (fc === null) throw internal('Device is not a fibre channel HBA');
  return { parent, parentWwnn, parentWwpn, parentFabricWwn, ...fc };
}

// ---------- format ----------

export function formatNodeDeviceXml(d: NodeDevDef): string {
  const out = ['<device>', `  <name>${escapeXml(d.name)}</name>`];
  if (d.parent !== null) out.push(`  <parent>${escapeXml(d.parent)}</parent>`);
  const opt = (ind: string, tag: string, v: string | null) => {
    if (v !== null) out.push(`${ind}<${tag}>${escapeXml(v)}</${tag}>`);
  };
  for (const c of d.caps) {
    out.push(`  <capability type='${c.type}'>`);
    if (c.type === 'system') {
      opt('    ', 'product', c.product);
      out.push('    <hardware>');
      opt('      ', 'vendor', c.hardware.vendor);
      opt('      ', 'version', c.hardware.version);
      opt('      ', 'serial', c.hardware.serial);
      out.push(`      <uuid>${uuidToString(c.hardware.uuid)}</uuid>`, '    </hardware>', '    <firmware>');
      opt('      ', 'vendor', c.firmware.vendor);
      opt('      ', 'version', c.firmware.version);
      opt('      ', 'release_date', c.firmware.releaseDate);
      out.push('    </firmware>');
    } else {
      out.push(`    <host>${c.host}</host>`);
      if (c.uniqueId !== -1) out.push(`    <unique_id>${c.uniqueId}</unique_id>`);
      if (c.fc) {
        out.push("    <capability type='fc_host'>");
        opt('      ', 'wwnn', c.fc.wwnn);
        opt('      ', 'wwpn', c.fc.wwpn);
        opt('      ', 'fabric_wwn', c.fc.fabricWwn);
        out.push('    </capability>');
      }
      if (c.vports) {
        out.push(
          "    <capability type='vport_ops'>",
          `      <max_vports>${c.vports.max}</max_vports>`,
          `      <vports>${c.vports.inUse}</vports>`,
          '    </capability>',
        );
      }
    }
    out.push('  </capability>');
  }
  out.push('</device>');
  return out.join('\n') + '\n';
}

// The capability names a device answers to (virNodeDeviceObjHasCap): its own, plus fc_host and vports of a scsi_host.
export function capNames(d: NodeDevDef): NodeDevCapType[] {
  const out: NodeDevCapType[] = [];
  for (const c of d.caps) {
    out.push(c.type);
    if (c.type === 'scsi_host' && c.fc) out.push('fc_host');
    if (c.type === 'scsi_host' && c.vports) out.push('vports');
  }
  return out;
}
