// SPDX-License-Identifier: Apache-2.0
// Domain XML subset: good input, malformed input, libvirt's error texts, memory units, re-serialisation.
import { VgError, isVgError } from '../../../../src/common/errors';
import { formatDomainXml, parseDomainXml, parseMemoryKiB } from '../../../../src/unprivileged/xml/domain';
import { TEST_DOMAIN_DEF } from '../../../../src/privileged/drivers/test-driver';
import { detailOf } from '../../../helpers/domain-def';
import { TEST_DOMAIN_XML } from '../../../helpers/test-domain';

const dom = (inner: string, root = "<domain type='test'>") => `${root}${inner}</domain>`;
const minimal = (extra = '') => dom(`<name>a</name><memory>1024</memory>${extra}<os><type>hvm</type></os>`);

function failure(xml: string): { code: string; detail: string } {
  try {
    parseDomainXml(xml);
  } catch (e) {
    if (isVgError(e)) return { code: e.code, detail: detailOf(e) };
    throw e;
  }
  throw new Error('expected a VgError');
}

describe('parseDomainXml', () => {
  test("the helper's typed seed domain is test:///default's XML", () => {
    expect(formatDomainXml(TEST_DOMAIN_DEF, null)).toBe(TEST_DOMAIN_XML);
    expect(parseDomainXml(TEST_DOMAIN_XML)).toEqual(TEST_DOMAIN_DEF);
  });

  test('the test domain round-trips byte for byte (virsh dumpxml --inactive test)', () => {
    expect(formatDomainXml(parseDomainXml(TEST_DOMAIN_XML), null)).toBe(TEST_DOMAIN_XML);
  });

  test('live XML carries the id attribute', () => {
    expect(formatDomainXml(parseDomainXml(TEST_DOMAIN_XML), 7).split('\n')[0]).toBe("<domain type='test' id='7'>");
  });

  test('minimal XML gets libvirt defaults and a random v4 uuid', () => {
    const d = parseDomainXml(minimal());
    expect(d.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(formatDomainXml(d, null)).toBe(`<domain type='test'>
  <name>a</name>
  <uuid>${d.uuid}</uuid>
  <memory unit='KiB'>1024</memory>
  <currentMemory unit='KiB'>1024</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
  </devices>
</domain>
`);
  });

  test('uuid without dashes and in upper case is canonicalised', () => {
    expect(parseDomainXml(minimal('<uuid>6695EB01F6A4830479AA97F2502E193F</uuid>')).uuid).toBe('6695eb01-f6a4-8304-79aa-97f2502e193f');
  });

  test('entities, title, description, devices, boot order and lifecycle actions survive a round trip', () => {
    const xml = dom(
      "<name>a</name><title>t &amp; x</title><description>d&lt;</description><memory>1024</memory><vcpu current='1'>2</vcpu>" +
        "<os><type arch='x86_64'>hvm</type><boot dev='cdrom'/><boot dev='hd'/></os><clock offset='localtime'/><on_reboot>destroy</on_reboot>" +
        "<devices><disk type='file' device='disk'><source file='/a&amp;b&apos;c'/><target dev='vda'/></disk><graphics type='vnc'/></devices>",
    );
    const out = formatDomainXml(parseDomainXml(xml), null);
    expect(out).toContain('<title>t &amp; x</title>');
    expect(out).toContain('<description>d&lt;</description>');
    expect(out).toContain("<vcpu placement='static' current='1'>2</vcpu>");
    expect(out).toContain("<type arch='x86_64'>hvm</type>\n    <boot dev='cdrom'/>\n    <boot dev='hd'/>");
    expect(out).toContain("<clock offset='localtime'/>");
    expect(out).toContain('<on_reboot>destroy</on_reboot>');
    expect(out).toContain(
      "    <disk type='file' device='disk'>\n      <source file='/a&amp;b&apos;c'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <graphics type='vnc'/>",
    );
    expect(formatDomainXml(parseDomainXml(out), null)).toBe(out);
  });

  test('os type linux is the xen alias', () => {
    expect(parseDomainXml(dom('<name>a</name><memory>1</memory><os><type>linux</type></os>')).osType).toBe('xen');
  });

  test('currentMemory above memory is clamped, as libvirt does', () => {
    const d = parseDomainXml(dom("<name>a</name><memory unit='GiB'>1</memory><currentMemory unit='MiB'>2048</currentMemory><os><type>hvm</type></os>"));
    expect([d.maxMemKiB, d.curMemKiB]).toEqual([1048576n, 1048576n]);
  });

  test.each([
    [
      'malformed: mismatched tag',
      "<domain type='test'>\n  <name>foo</name>\n  <memory>5\n</domain>\n",
      'VG_ERR_XML_INVALID',
      /Expected closing tag 'memory'.*\(line 4, column \d+\)/,
    ],
    ['malformed: not xml', 'not xml at all', 'VG_ERR_XML_INVALID', /line 1, column 1/],
    ['malformed: unclosed root', "<domain type='test'><name>a</name>", 'VG_ERR_XML_INVALID', /Unclosed tag 'domain'/],
    ['empty document', '   ', 'VG_ERR_XML_INVALID', /^Document is empty$/],
    ['two root elements', "<domain type='test'/><domain type='test'/>", 'VG_ERR_XML_INVALID', /exactly one root/],
    ['doctype', "<!DOCTYPE d [<!ENTITY e 'x'>]><domain type='test'><name>&e;</name></domain>", 'VG_ERR_XML_INVALID', /DOCTYPE/],
    ['undefined entity', minimal('<title>&bogus;</title>'), 'VG_ERR_XML_INVALID', /^Entity 'bogus' not defined \(line 1\)$/],
    ['wrong root', '<network><name>x</name></network>', 'VG_ERR_XML_INVALID', /^expecting root element of 'domain', not 'network'$/],
    [
      'missing type',
      '<domain><name>a</name><memory>1</memory><os><type>hvm</type></os></domain>',
      'VG_ERR_XML_DETAIL',
      /^internal error: missing domain type attribute$/,
    ],
    ['bogus type', minimal().replace("'test'", "'bogus'"), 'VG_ERR_XML_DETAIL', /^unsupported configuration: invalid domain type bogus$/],
    ['missing name', dom('<memory>512</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_DETAIL', /^missing name information$/],
    ['empty name', dom('<name></name><memory>512</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_DETAIL', /^missing name information$/],
    ['name with slash', dom('<name>a/b</name><memory>1</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_INVALID', /^name a\/b cannot contain '\/'$/],
    ['name with leading dot', dom('<name>.a</name><memory>1</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_INVALID', /^name '.a' is not allowed/],
    ['name too long', dom(`<name>${'x'.repeat(65)}</name><memory>1</memory><os><type>hvm</type></os>`), 'VG_ERR_XML_INVALID', /is not allowed/],
    ['malformed uuid', minimal('<uuid>zz</uuid>'), 'VG_ERR_XML_DETAIL', /^internal error: malformed uuid element$/],
    ['missing memory', dom('<name>a</name><os><type>hvm</type></os>'), 'VG_ERR_XML_INVALID', /^Memory size must be specified/],
    ['zero memory', dom('<name>a</name><memory>0</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_INVALID', /^Memory size must be specified/],
    [
      'non-numeric memory',
      dom('<name>a</name><memory>x</memory><os><type>hvm</type></os>'),
      'VG_ERR_XML_INVALID',
      /^Invalid value 'x' for element or attribute '.\/memory\[1\]'$/,
    ],
    ['negative memory', dom('<name>a</name><memory>-5</memory><os><type>hvm</type></os>'), 'VG_ERR_XML_INVALID', /Invalid value '-5'/],
    ['huge memory', dom("<name>a</name><memory unit='EiB'>9</memory><os><type>hvm</type></os>"), 'VG_ERR_XML_INVALID', /Invalid value '9'/],
    ['unknown unit', dom("<name>a</name><memory unit='foo'>1</memory><os><type>hvm</type></os>"), 'VG_ERR_DOMAIN_ARG', /^unknown suffix 'foo'$/],
    ['vcpu not a number', minimal('<vcpu>abc</vcpu>'), 'VG_ERR_XML_INVALID', /^maximum vcpus count must be an integer$/],
    ['vcpu zero', minimal('<vcpu>0</vcpu>'), 'VG_ERR_XML_INVALID', /Invalid value '0'/],
    [
      'vcpu current above max',
      minimal("<vcpu current='3'>2</vcpu>"),
      'VG_ERR_XML_DETAIL',
      /^unsupported configuration: maximum vCPU count must not be less than current vCPU count$/,
    ],
    ['missing os', dom('<name>a</name><memory>1</memory>'), 'VG_ERR_XML_INVALID', /^an os <type> must be specified$/],
    [
      'unknown os type',
      dom('<name>a</name><memory>1</memory><os><type>bogus</type></os>'),
      'VG_ERR_XML_DETAIL',
      /^unsupported configuration: unknown OS type 'bogus'$/,
    ],
    [
      'unknown arch',
      dom("<name>a</name><memory>1</memory><os><type arch='arm'>hvm</type></os>"),
      'VG_ERR_XML_DETAIL',
      /^unsupported configuration: Unknown architecture arm$/,
    ],
    [
      'unknown boot device',
      dom("<name>a</name><memory>1</memory><os><type>hvm</type><boot dev='usb'/></os>"),
      'VG_ERR_XML_DETAIL',
      /unknown boot device 'usb'/,
    ],
    ['bad lifecycle action', minimal('<on_crash>explode</on_crash>'), 'VG_ERR_XML_INVALID', /Invalid value 'explode'/],
    ['bad clock offset', minimal("<clock offset='mars'/>"), 'VG_ERR_XML_INVALID', /Invalid value 'mars'/],
    ['devices nested too deep', minimal(`<devices>${'<a>'.repeat(20)}${'</a>'.repeat(20)}</devices>`), 'VG_ERR_XML_INVALID', /nested deeper/],
  ])('%s', (_what, xml, code, detail) => {
    const f = failure(xml);
    expect(f.code).toBe(code);
    expect(f.detail).toMatch(detail);
  });
});

describe('parseMemoryKiB (libvirt virScaleInteger)', () => {
  test.each([
    ['1024', undefined, 1024n],
    ['1024', '', 1024n],
    ['1048577', 'b', 1025n], // rounded up to whole KiB
    ['2048', 'bytes', 2n],
    ['1', 'k', 1n],
    ['1', 'KiB', 1n],
    ['1000', 'KB', 977n],
    ['512', 'MiB', 524288n],
    ['512', 'M', 524288n],
    ['1', 'MB', 977n],
    ['2', 'GiB', 2097152n],
    ['2', 'G', 2097152n],
    ['1', 'GB', 976563n],
    ['1', 'TiB', 1073741824n],
    ['1', 'PiB', 1n << 40n],
  ])('%s %s -> %s KiB', (text, unit, kib) => {
    expect(parseMemoryKiB(text, unit, './memory[1]')).toBe(kib);
  });

  test('more than 1 PiB is refused', () => {
    expect(() => parseMemoryKiB('2', 'PiB', './memory[1]')).toThrow(VgError);
  });
});
