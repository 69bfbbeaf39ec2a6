// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/snapshot.ts: domain snapshots and checkpoints. Client XML is
// parsed here into typed moments (../xml/snapshot.ts); the helper keeps them and answers typed moments, formatted here.
// A call naming a snapshot or checkpoint is decided on its domain, as the helper records it (name, tenant).
import { VG_ERR_DOMAIN_STATE, VG_ERR_INTERNAL, VG_ERR_NO_CHECKPOINT, VG_ERR_NO_DOMAIN, VG_ERR_NO_SNAPSHOT, VgError, VirFrom } from '../../common/errors';
import { LookupKind, Op, uuidToString } from '../../ipc/program';
import { type Moment, MomentKind, type MomentKindCode, isMomentName } from '../../ipc/objects/snapshot';
import { CHECKPOINT_LIST_MAX, PS, type RemoteMoment, SNAPSHOT_LIST_MAX } from '../../protocol/procs/snapshot';
import type { RemoteDomain } from '../../protocol/types';
import { formatCheckpointXml, formatSnapshotXml, parseCheckpointXml, parseSnapshotXml } from '../xml/snapshot';
import { type CallObject, type Entry, type EntryOptions, type HandlerContext, checkFlags as checkAnyFlags, entry } from './common';

// virCheckFlags in the test driver: reported from VIR_FROM_TEST (12), as clients see from test:///default.
function checkFlags(flags: number, allowed: number, fn: string): void {
  try {
    checkAnyFlags(flags, allowed, fn);
  } catch (e) {
    if (e instanceof VgError) throw new VgError(e.code, e.message, e.virCode, VirFrom.TEST);
    throw e;
  }
}

const SNAP = MomentKind.SNAPSHOT;
const CKP = MomentKind.CHECKPOINT;

// The flags libvirt 9.0's test driver accepts, per function (virCheckFlags), with the function names it reports.
const F = {
  SNAP_CREATE: 1 | 2 | 8 | 64 | 128 | 256 | 512, // REDEFINE CURRENT HALT QUIESCE ATOMIC LIVE VALIDATE
  SNAP_LIST: 0x7ff, // ROOTS/DESCENDANTS TOPOLOGICAL and every filter
  SNAP_XML: 1, // SECURE
  SNAP_DELETE: 1 | 4, // CHILDREN CHILDREN_ONLY (not METADATA_ONLY)
  SNAP_REVERT: 1 | 2 | 4, // RUNNING PAUSED FORCE
  CKP_CREATE: 1 | 2, // REDEFINE QUIESCE
  CKP_LIST: 0xf, // ROOTS/DESCENDANTS TOPOLOGICAL LEAVES NO_LEAVES
  CKP_XML: 1 | 2 | 4, // SECURE NO_DOMAIN SIZE
  CKP_DELETE: 1 | 2 | 4, // CHILDREN METADATA_ONLY CHILDREN_ONLY
} as const;
const SNAP_REDEFINE = 1;
const CKP_REDEFINE = 1;
const CKP_XML_NO_DOMAIN = 2;
const CKP_XML_SIZE = 4;

// The domain a call names (by its uuid; the helper's record, never the client's name), for the dispatcher's decision.
async function domainOf(ctx: HandlerContext, dom: RemoteDomain): Promise<{ name: string; tenant: string; active: boolean }> {
  const known = ctx.mirror.info(dom.uuid);
  if (known === null) throw VG_ERR_NO_DOMAIN(`: no domain with matching uuid '${uuidToString(dom.uuid)}'`);
  const d = known ?? (await ctx.helper.act(Op.DOMAIN_READ_REQ, 'lookup', { key: { kind: LookupKind.UUID, uuid: dom.uuid } }));
  return { name: d.name, tenant: d.tenant ?? '', active: d.id !== -1 };
}

// The audit record names the snapshot or checkpoint too: `snapshotName` / `checkpointName` join the call's summary.
type Noted = { snapshotName?: string; checkpointName?: string };
function note(args: object, kind: MomentKindCode, name: string): void {
  if (name === '') return;
  if (kind === SNAP) (args as Noted).snapshotName = name;
  else (args as Noted).checkpointName = name;
}

const objectOf = async (ctx: HandlerContext, dom: RemoteDomain): Promise<CallObject[]> => {
  const d = await domainOf(ctx, dom);
  return [{ kind: 'domain', name: d.name, uuid: uuidToString(dom.uuid), tenant: d.tenant }];
};
// Resolvers: by the moment reference (its domain), or by the domain with the new moment's name read from its XML.
const byRef = <A extends object>(kind: MomentKindCode, pick: (a: A) => RemoteMoment): EntryOptions<A> => ({
  objects: (ctx: HandlerContext, args: A) => {
    const ref = pick(args);
    note(args, kind, ref.name);
    return objectOf(ctx, ref.dom);
  },
});
const bySnap = byRef(SNAP, (a: { snap: RemoteMoment }) => a.snap);
const byCkp = byRef(CKP, (a: { checkpoint: RemoteMoment }) => a.checkpoint);
const byCreate = (kind: MomentKindCode): EntryOptions<{ dom: RemoteDomain; xmlDesc: string; flags: number }> => ({
  objects: (ctx: HandlerContext, args: { dom: RemoteDomain; xmlDesc: string; flags: number }) => {
    try {
      const redefine = (args.flags & 1) !== 0;
      note(args, kind, (kind === SNAP ? parseSnapshotXml : parseCheckpointXml)(args.xmlDesc, redefine).name);
    } catch {
      // the handler reports the XML error after the permission decision
    }
    return objectOf(ctx, args.dom);
  },
});

const list = async (ctx: HandlerContext, dom: RemoteDomain, kind: MomentKindCode, from: string, flags: number): Promise<string[]> =>
  (await ctx.helper.act(Op.SNAPSHOT_READ_REQ, 'list', { uuid: dom.uuid, kind, from, flags })).names;

const get = async (ctx: HandlerContext, ref: RemoteMoment, kind: MomentKindCode): Promise<{ moment: Moment; current: boolean }> =>
  ctx.helper.act(Op.SNAPSHOT_READ_REQ, 'get', { uuid: ref.dom.uuid, kind, name: checkedName(ref.name, kind) });

// A name the helper's rule refuses cannot name a moment: answer as for an unknown one (libvirt's wording).
function checkedName(name: string, kind: MomentKindCode): string {
  if (isMomentName(name)) return name;
  const shown = name.slice(0, 64);
  if (kind === SNAP) throw VG_ERR_NO_SNAPSHOT(`no domain snapshot with matching name '${shown}'`);
  throw VG_ERR_NO_CHECKPOINT(`no domain checkpoint with matching name '${shown}'`);
}

const ref = (dom: RemoteDomain, name: string): RemoteMoment => ({ name, dom });

function bounded<T>(items: T[], max: number, what: string): T[] {
  if (items.length > max) throw VG_ERR_INTERNAL(`too many remote ${what}s: ${items.length} > ${max}`);
  return items;
}

async function create(ctx: HandlerContext, kind: MomentKindCode, dom: RemoteDomain, xml: string, flags: number): Promise<RemoteMoment> {
  const snap = kind === SNAP;
  checkFlags(flags, snap ? F.SNAP_CREATE : F.CKP_CREATE, snap ? 'testDomainSnapshotCreateXML' : 'testDomainCheckpointCreateXML');
  const redefine = (flags & (snap ? SNAP_REDEFINE : CKP_REDEFINE)) !== 0;
  const moment = snap ? parseSnapshotXml(xml, redefine) : parseCheckpointXml(xml, redefine);
  const a = await ctx.helper.act(Op.SNAPSHOT_WRITE_REQ, 'create', { actor: ctx.actor(), uuid: dom.uuid, kind, moment, flags });
  return ref(dom, a.name);
}

async function del(ctx: HandlerContext, kind: MomentKindCode, r: RemoteMoment, flags: number): Promise<void> {
  const snap = kind === SNAP;
  checkFlags(flags, snap ? F.SNAP_DELETE : F.CKP_DELETE, snap ? 'testDomainSnapshotDelete' : 'testDomainCheckpointDelete');
  await ctx.helper.act(Op.SNAPSHOT_WRITE_REQ, 'delete', { actor: ctx.actor(), uuid: r.dom.uuid, kind, name: checkedName(r.name, kind), flags });
}

async function parentOf(ctx: HandlerContext, kind: MomentKindCode, r: RemoteMoment, flags: number): Promise<RemoteMoment> {
  checkFlags(flags, 0, kind === SNAP ? 'testDomainSnapshotGetParent' : 'testDomainCheckpointGetParent');
  const { moment } = await get(ctx, r, kind);
  if (moment.parent === '') {
    if (kind === SNAP) throw VG_ERR_NO_SNAPSHOT(`snapshot '${moment.name}' does not have a parent`);
    throw VG_ERR_NO_CHECKPOINT(`checkpoint '${moment.name}' does not have a parent`);
  }
  return ref(r.dom, moment.parent);
}

export const snapshotHandlers: Entry[] = [
  entry(PS.DOMAIN_SNAPSHOT_CREATE_XML, async (ctx, { dom, xmlDesc, flags }) => ({ snap: await create(ctx, SNAP, dom, xmlDesc, flags) }), byCreate(SNAP)),
  entry(
    PS.DOMAIN_SNAPSHOT_GET_XML_DESC,
    async (ctx, { snap, flags }) => {
      checkFlags(flags, F.SNAP_XML, 'testDomainSnapshotGetXMLDesc');
      const { moment } = await get(ctx, snap, SNAP);
      return { xml: formatSnapshotXml(moment, uuidToString(snap.dom.uuid)) };
    },
    bySnap,
  ),
  entry(PS.DOMAIN_SNAPSHOT_NUM, async (ctx, { dom, flags }) => {
    checkFlags(flags, F.SNAP_LIST, 'testDomainSnapshotNum');
    return { num: (await list(ctx, dom, SNAP, '', flags)).length };
  }),
  entry(PS.DOMAIN_SNAPSHOT_LIST_NAMES, async (ctx, { dom, maxnames, flags }) => {
    if (maxnames > SNAPSHOT_LIST_MAX) throw VG_ERR_INTERNAL('maxnames > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX');
    checkFlags(flags, F.SNAP_LIST, 'testDomainSnapshotListNames');
    return { names: (await list(ctx, dom, SNAP, '', flags)).slice(0, Math.max(0, maxnames)) };
  }),
  entry(PS.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME, async (ctx, { dom, name, flags }) => {
    checkFlags(flags, 0, 'testDomainSnapshotLookupByName');
    const { moment } = await get(ctx, ref(dom, name), SNAP);
    return { snap: ref(dom, moment.name) };
  }),
  entry(PS.DOMAIN_HAS_CURRENT_SNAPSHOT, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainHasCurrentSnapshot');
    const a = await ctx.helper.act(Op.SNAPSHOT_READ_REQ, 'current', { uuid: dom.uuid, kind: SNAP });
    return { result: a.name === '' ? 0 : 1 };
  }),
  entry(PS.DOMAIN_SNAPSHOT_CURRENT, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, 'testDomainSnapshotCurrent');
    const a = await ctx.helper.act(Op.SNAPSHOT_READ_REQ, 'current', { uuid: dom.uuid, kind: SNAP });
    if (a.name === '') throw VG_ERR_NO_SNAPSHOT('the domain does not have a current snapshot');
    return { snap: ref(dom, a.name) };
  }),
  entry(
    PS.DOMAIN_REVERT_TO_SNAPSHOT,
    async (ctx, { snap, flags }) => {
      checkFlags(flags, F.SNAP_REVERT, 'testDomainRevertToSnapshot');
      await ctx.helper.act(Op.SNAPSHOT_WRITE_REQ, 'revert', { actor: ctx.actor(), uuid: snap.dom.uuid, name: checkedName(snap.name, SNAP), flags });
    },
    bySnap,
  ),
  entry(PS.DOMAIN_SNAPSHOT_DELETE, async (ctx, { snap, flags }) => del(ctx, SNAP, snap, flags), bySnap),
  entry(PS.DOMAIN_SNAPSHOT_GET_PARENT, async (ctx, { snap, flags }) => ({ snap: await parentOf(ctx, SNAP, snap, flags) }), bySnap),
  entry(
    PS.DOMAIN_SNAPSHOT_NUM_CHILDREN,
    async (ctx, { snap, flags }) => {
      checkFlags(flags, F.SNAP_LIST, 'testDomainSnapshotNumChildren');
      return { num: (await list(ctx, snap.dom, SNAP, checkedName(snap.name, SNAP), flags)).length };
    },
    bySnap,
  ),
  entry(
    PS.DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES,
    async (ctx, { snap, maxnames, flags }) => {
      if (maxnames > SNAPSHOT_LIST_MAX) throw VG_ERR_INTERNAL('maxnames > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX');
      checkFlags(flags, F.SNAP_LIST, 'testDomainSnapshotListChildrenNames');
      return { names: (await list(ctx, snap.dom, SNAP, checkedName(snap.name, SNAP), flags)).slice(0, Math.max(0, maxnames)) };
    },
    bySnap,
  ),
  entry(
    PS.DOMAIN_SNAPSHOT_IS_CURRENT,
    async (ctx, { snap, flags }) => {
      checkFlags(flags, 0, 'testDomainSnapshotIsCurrent');
      return { current: (await get(ctx, snap, SNAP)).current ? 1 : 0 };
    },
    bySnap,
  ),
  entry(
    PS.DOMAIN_SNAPSHOT_HAS_METADATA,
    async (ctx, { snap, flags }) => {
      checkFlags(flags, 0, 'testDomainSnapshotHasMetadata');
      await get(ctx, snap, SNAP);
      return { metadata: 1 }; // the test driver keeps metadata for every snapshot
    },
    bySnap,
  ),
  entry(PS.DOMAIN_LIST_ALL_SNAPSHOTS, async (ctx, { dom, needResults, flags }) => {
    checkFlags(flags, F.SNAP_LIST, 'testDomainListAllSnapshots');
    const names = bounded(await list(ctx, dom, SNAP, '', flags), SNAPSHOT_LIST_MAX, 'domain snapshot');
    return { snapshots: needResults ? names.map((n) => ref(dom, n)) : [], ret: names.length };
  }),
  entry(
    PS.DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN,
    async (ctx, { snapshot, needResults, flags }) => {
      checkFlags(flags, F.SNAP_LIST, 'testDomainSnapshotListAllChildren');
      const names = bounded(await list(ctx, snapshot.dom, SNAP, checkedName(snapshot.name, SNAP), flags), SNAPSHOT_LIST_MAX, 'domain snapshot');
      return { snapshots: needResults ? names.map((n) => ref(snapshot.dom, n)) : [], ret: names.length };
    },
    byRef(SNAP, (a: { snapshot: RemoteMoment }) => a.snapshot),
  ),
  entry(PS.DOMAIN_CHECKPOINT_CREATE_XML, async (ctx, { dom, xmlDesc, flags }) => ({ checkpoint: await create(ctx, CKP, dom, xmlDesc, flags) }), byCreate(CKP)),
  entry(
    PS.DOMAIN_CHECKPOINT_GET_XML_DESC,
    async (ctx, { checkpoint, flags }) => {
      checkFlags(flags, F.CKP_XML, 'testDomainCheckpointGetXMLDesc');
      const { moment } = await get(ctx, checkpoint, CKP);
      // XML_SIZE needs a running domain (the test driver's sizes are never reported as valid, so none is printed).
      if (flags & CKP_XML_SIZE && !(await domainOf(ctx, checkpoint.dom)).active) throw VG_ERR_DOMAIN_STATE('domain is not running');
      return { xml: formatCheckpointXml(moment, (flags & CKP_XML_NO_DOMAIN) !== 0) };
    },
    byCkp,
  ),
  entry(PS.DOMAIN_LIST_ALL_CHECKPOINTS, async (ctx, { dom, needResults, flags }) => {
    checkFlags(flags, F.CKP_LIST, 'testDomainListAllCheckpoints');
    const names = bounded(await list(ctx, dom, CKP, '', flags), CHECKPOINT_LIST_MAX, 'domain checkpoint');
    return { checkpoints: needResults ? names.map((n) => ref(dom, n)) : [], ret: names.length };
  }),
  entry(
    PS.DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN,
    async (ctx, { checkpoint, needResults, flags }) => {
      checkFlags(flags, F.CKP_LIST, 'testDomainCheckpointListAllChildren');
      const names = bounded(await list(ctx, checkpoint.dom, CKP, checkedName(checkpoint.name, CKP), flags), CHECKPOINT_LIST_MAX, 'domain checkpoint');
      return { checkpoints: needResults ? names.map((n) => ref(checkpoint.dom, n)) : [], ret: names.length };
    },
    byCkp,
  ),
  entry(PS.DOMAIN_CHECKPOINT_LOOKUP_BY_NAME, async (ctx, { dom, name, flags }) => {
    checkFlags(flags, 0, 'testDomainCheckpointLookupByName');
    const { moment } = await get(ctx, ref(dom, name), CKP);
    return { checkpoint: ref(dom, moment.name) };
  }),
  entry(PS.DOMAIN_CHECKPOINT_GET_PARENT, async (ctx, { checkpoint, flags }) => ({ parent: await parentOf(ctx, CKP, checkpoint, flags) }), byCkp),
  entry(PS.DOMAIN_CHECKPOINT_DELETE, async (ctx, { checkpoint, flags }) => del(ctx, CKP, checkpoint, flags), byCkp),
];
