// SPDX-License-Identifier: Apache-2.0
// DOMAIN_READ: list, lookup, info, the definition (the front end writes its XML), and the extra read actions (helper side of the IPC boundary).
import type { Op } from '../../ipc/program';
import { answerDomainReadExtra } from './domain-extra';
import { answerScreenshot } from './graphics';
import { type AnswerFn, ProtocolViolation, then } from './types';

// Not `async`: a driver that answers at once (the test driver) is answered in the same turn, in request order.
export const answerDomainRead: AnswerFn<typeof Op.DOMAIN_READ_REQ> = (ctx, body) => {
  const d = ctx.driver;
  switch (body.action) {
    case 'list':
      return then(d.list(), (domains) => ({ domains }));
    case 'lookup':
      return d.lookup(body.key);
    case 'info':
      return d.info(body.uuid);
    case 'xml':
      return d.xml(body.uuid, body.inactive);
    case 'screenshot':
      return answerScreenshot(ctx, body.uuid, body.screen);
    default: {
      const extra = answerDomainReadExtra(ctx, body);
      if (extra === undefined) throw new ProtocolViolation(`DOMAIN_READ action ${String((body as { action: unknown }).action)} has no answer`);
      return extra;
    }
  }
};
