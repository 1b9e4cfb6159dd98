import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { GenesysVirtualAgentAnalytics, GenesysVirtualAgentAnalyticsProps } from '../lib';

/** A SingleOrg deployment's props of the right shape (placeholders). */
export const SINGLE_ORG: GenesysVirtualAgentAnalyticsProps = {
  genesysSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys/va-analytics-AbCdEf',
  genesysEventSourceName: 'aws.partner/genesys.com/cloud/00000000-0000-0000-0000-000000000000/va-analytics',
};
export const MULTI_ORG: GenesysVirtualAgentAnalyticsProps = { tenancy: 'MultiOrg' };
export const SECRET_KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The four shapes the template's conditions make. */
export const MODES: [string, GenesysVirtualAgentAnalyticsProps][] = [
  ['SingleOrg PerEvent', SINGLE_ORG],
  ['SingleOrg Batch', { ...SINGLE_ORG, deliveryMode: 'Batch' }],
  ['MultiOrg PerEvent', MULTI_ORG],
  ['MultiOrg Batch', { ...MULTI_ORG, deliveryMode: 'Batch' }],
];

export interface Synth {
  readonly stack: Stack;
  readonly construct: GenesysVirtualAgentAnalytics;
  readonly template: Template;
  /** Resources keyed by their construct id (the SAM logical id). */
  readonly byId: Record<string, { Type: string; Properties: Record<string, any>; [k: string]: any }>;
  /** The CDK logical id of a construct id. */
  readonly logicalId: (id: string) => string;
}

const cache = new Map<string, Synth>();

/**
 * Synthesizes the construct in a stack, without the Rust build (a
 * placeholder asset); the same props give the same (cached) result unless
 * `fresh`.
 */
export function synth(props: GenesysVirtualAgentAnalyticsProps = SINGLE_ORG, fresh = false): Synth {
  const key = JSON.stringify(props);
  const hit = cache.get(key);
  if (hit && !fresh) return hit;
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true } });
  const stack = new Stack(app, 'Test', { analyticsReporting: false });
  const construct = new GenesysVirtualAgentAnalytics(stack, 'Analytics', props);
  const template = Template.fromStack(stack);
  const json = template.toJSON();
  const byId: Synth['byId'] = {};
  const logical: Record<string, string> = {};
  for (const [lid, res] of Object.entries<any>(json.Resources)) {
    const segs = String(res.Metadata?.['aws:cdk:path'] ?? '').split('/');
    if (segs[segs.length - 1] === 'Resource') segs.pop();
    const id = segs[segs.length - 1];
    byId[id] = res;
    logical[id] = lid;
  }
  const result: Synth = { stack, construct, template, byId, logicalId: (id) => logical[id] };
  if (!fresh) cache.set(key, result);
  return result;
}

/** The Sids (or, without one, the actions) of a policy document's statements. */
export function sids(doc: { Statement: any[] }): string[] {
  return doc.Statement.map((s) => s.Sid ?? JSON.stringify(s.Action));
}

/** A role's inline policy by name. */
export function inlinePolicy(role: { Properties: Record<string, any> }, name: string): { Statement: any[] } {
  const p = (role.Properties.Policies as any[]).find((x) => x.PolicyName === name);
  if (!p) throw new Error(`no inline policy ${name}`);
  return p.PolicyDocument;
}
