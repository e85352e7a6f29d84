/**
 * `pnpm seed`: the example templates and automations of flows 1, 2 and 4 (onboarding with a
 * verification code, order updates, appointment reminders, a 30-day win-back offer), created
 * through the gateway like an admin would in the Sandbox. Safe to run again: what exists (by
 * name) is left as it is.
 *
 *   GATEWAY_URL      default http://127.0.0.1:$GATEWAY_PORT/graphql (4000)
 *   TEXTLOOP_API_KEY default dev-admin-key (the development key)
 *   SEED_QUICK_START_DELAY  default PT5M: how long after sign-up the quick-start tip goes out
 */
import { pathToFileURL } from 'node:url';

export type Gql = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<T>;

export interface SeedOptions {
  quickStartDelay?: string;
}

export const EXAMPLE_TEMPLATES = [
  {
    name: 'welcome-verification',
    category: 'OTP',
    body: 'Welcome to Textloop{% if contact.firstName %}, {{ contact.firstName }}{% endif %}! Your verification code is {{ code }}. It expires in 10 minutes.',
  },
  {
    name: 'quick-start',
    category: 'TRANSACTIONAL',
    body: 'Quick start: reply to this number any time to reach our team, and text HELP for help or STOP to opt out.',
  },
  {
    name: 'order-confirmed',
    category: 'TRANSACTIONAL',
    body: 'Thanks{% if contact.firstName %} {{ contact.firstName }}{% endif %}! Order {{ event.orderId }} is confirmed{% if event.total %}: {{ event.total }}{% endif %}.',
  },
  {
    name: 'order-shipped',
    category: 'TRANSACTIONAL',
    body: 'Good news{% if contact.firstName %} {{ contact.firstName }}{% endif %}: order {{ event.orderId }} has shipped{% if event.carrier %} with {{ event.carrier }}{% endif %}. Track it: {{ event.trackingUrl | default: "in your account" }}',
  },
  {
    name: 'payment-received',
    category: 'TRANSACTIONAL',
    body: 'We received your payment{% if event.amount %} of {{ event.amount }}{% endif %} for order {{ event.orderId }}. Thank you!',
  },
  {
    name: 'appointment-reminder-24h',
    category: 'TRANSACTIONAL',
    body: 'Reminder: your appointment is tomorrow, {{ event.startsAt | date: "%a %b %e, %l:%M %p", contact.timezone }}. Reply to this message if you need to change it.',
  },
  {
    name: 'appointment-reminder-2h',
    category: 'TRANSACTIONAL',
    body: 'See you soon: your appointment starts at {{ event.startsAt | date: "%l:%M %p", contact.timezone }}.',
  },
  {
    name: 'win-back-30',
    category: 'MARKETING',
    body: 'Hi {{ contact.firstName | default: "there" }}, we miss you! Take {{ offer.discountPercent }}% off your next order with code {{ offer.code }}, valid until {{ offer.expiresAt | date: "%b %e", contact.timezone }}. Reply STOP to opt out.',
  },
] as const;

/** The offer of the win-back example: a unique BACK-XXXXXX code per contact, 20 % off, valid 14 days. */
export const WIN_BACK_OFFER = { codePrefix: 'BACK', discountPercent: 20, validDays: 14 } as const;

export function exampleAutomations(options: SeedOptions = {}) {
  return [
    {
      name: 'Onboarding: welcome code and quick start',
      triggerEvent: 'contact.created',
      steps: [
        { type: 'START_VERIFICATION', template: 'welcome-verification' },
        { type: 'SEND_MESSAGE', template: 'quick-start', delay: options.quickStartDelay ?? 'PT5M' },
      ],
    },
    { name: 'Order confirmed', triggerEvent: 'order.confirmed', steps: [{ type: 'SEND_MESSAGE', template: 'order-confirmed' }] },
    { name: 'Order shipped', triggerEvent: 'order.shipped', steps: [{ type: 'SEND_MESSAGE', template: 'order-shipped' }] },
    { name: 'Payment received', triggerEvent: 'payment.received', steps: [{ type: 'SEND_MESSAGE', template: 'payment-received' }] },
    {
      name: 'Appointment reminders',
      triggerEvent: 'appointment.booked',
      runKey: 'appointmentId',
      cancelOn: ['appointment.cancelled'],
      steps: [
        { type: 'SEND_MESSAGE', template: 'appointment-reminder-24h', relativeTo: 'startsAt', offset: '-PT24H' },
        { type: 'SEND_MESSAGE', template: 'appointment-reminder-2h', relativeTo: 'startsAt', offset: '-PT2H' },
      ],
    },
    {
      // contacts publishes contact.dormant { days } once per threshold (30/60/90) per inactivity spell.
      name: 'Win-back after 30 days',
      triggerEvent: 'contact.dormant',
      triggerFilter: { days: 30 },
      steps: [{ type: 'SEND_MESSAGE', template: 'win-back-30', offer: WIN_BACK_OFFER }],
    },
  ];
}

/** Creates what is missing; returns the names created. */
export async function seedExamples(gql: Gql, options: SeedOptions = {}): Promise<{ templates: string[]; automations: string[] }> {
  const created = { templates: [] as string[], automations: [] as string[] };
  const { templates } = await gql<{ templates: Array<{ name: string }> }>('{ templates { name } }');
  const haveTemplates = new Set(templates.map((t) => t.name));
  for (const t of EXAMPLE_TEMPLATES) {
    if (haveTemplates.has(t.name)) continue;
    await gql('mutation($input: TemplateInput!) { createTemplate(input: $input) { id } }', { input: t });
    created.templates.push(t.name);
  }
  const { automations } = await gql<{ automations: Array<{ name: string }> }>('{ automations { name } }');
  const haveAutomations = new Set(automations.map((a) => a.name));
  for (const a of exampleAutomations(options)) {
    if (haveAutomations.has(a.name)) continue;
    await gql('mutation($input: AutomationInput!) { createAutomation(input: $input) { id } }', { input: a });
    created.automations.push(a.name);
  }
  return created;
}

export function gatewayClient(url: string, apiKey: string): Gql {
  return async (query, variables) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: Array<{ message: string }> };
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
    return body.data;
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const url = process.env.GATEWAY_URL ?? `http://127.0.0.1:${process.env.GATEWAY_PORT ?? 4000}/graphql`;
  const key = process.env.TEXTLOOP_API_KEY ?? 'dev-admin-key';
  try {
    const created = await seedExamples(gatewayClient(url, key), { quickStartDelay: process.env.SEED_QUICK_START_DELAY });
    const list = (names: string[]) => (names.length ? names.join(', ') : 'none (all there already)');
    console.log(`templates created: ${list(created.templates)}\nautomations created: ${list(created.automations)}`);
    console.log('Try it: create a contact in the Sandbox or the simulator page and watch its handset.');
  } catch (err) {
    console.error(`seed failed against ${url}: ${(err as Error).message}\nIs the platform running (pnpm start)?`);
    process.exit(1);
  }
}
