// CDK app entry (cdk.json: `node infra/bin/app.ts`; Node 22 strips the types). cdk-nag's AwsSolutions pack runs
// as a CDK validation plugin: an unacknowledged error fails the synth.
import { App, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import { OpenVbsStack, STACK_NAME } from '../stack.ts';

const app = new App();
// Environment-agnostic on purpose: one template for any account and region.
new OpenVbsStack(app, STACK_NAME);
Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app, { verbose: true }));
app.synth();
