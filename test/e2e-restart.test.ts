import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import { startE2E, type E2E } from './support/e2e';

// The zero-setup default: every service on embedded PGlite under DATA_DIR. Stopping and starting
// every process keeps contacts, templates, messages and their history.

let dataDir: string;
let nats: TestNats;
let e2e: E2E | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tl-restart-'));
  nats = await startTestNats();
});

afterAll(async () => {
  await e2e?.close();
  await nats?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

it('keeps all data across a restart of every process (embedded PGlite)', async () => {
  e2e = await startE2E({ prefix: 'restart', embedded: true, dataDir, nats });
  const { createContact } = await e2e.gql(
    `mutation { createContact(input: { phone: "+442079460958", firstName: "Grace", externalId: "u-42" }) { id timezone } }`,
  );
  expect(createContact.timezone).toBe('Europe/London');
  await e2e.gql(`mutation { createTemplate(input: { name: "welcome", body: "Welcome {{ contact.firstName }}!" }) { id } }`);
  const { sendMessage } = await e2e.gql(`mutation($c: ID!) { sendMessage(input: { contactId: $c, template: "welcome" }) { id } }`, { c: createContact.id });
  await waitFor(async () => (await e2e!.gql(`query($id: ID!) { message(id: $id) { status } }`, { id: sendMessage.id })).message.status === 'DELIVERED', {
    timeoutMs: 30_000,
    what: 'delivery before the restart',
  });
  await e2e.platform.stop();

  e2e = await startE2E({ prefix: 'restart', embedded: true, dataDir, nats });
  const after = await e2e.gql(
    `query($id: ID!) {
       contactByExternalId(externalId: "u-42") { id firstName phone messages { totalCount } }
       template(name: "welcome") { body }
       message(id: $id) { status body statusHistory { status } }
     }`,
    { id: sendMessage.id },
  );
  expect(after.contactByExternalId).toEqual({ id: createContact.id, firstName: 'Grace', phone: '+442079460958', messages: { totalCount: 1 } });
  expect(after.template.body).toBe('Welcome {{ contact.firstName }}!');
  expect(after.message.status).toBe('DELIVERED');
  expect(after.message.body).toBe('Welcome Grace!');
  expect(after.message.statusHistory.at(-1).status).toBe('DELIVERED');
}, 400_000);
