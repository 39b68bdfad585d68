// Package testenv gives tests real AWS parts to run against: a moto_server
// started and stopped by the test itself, an SDK configuration that points at
// it without reading the developer's ~/.aws, a getenv for the app
// constructors, the stack of template.yaml provisioned in the emulator, and a
// proxy that injects the faults moto never produces (throttling, partial
// batch results, crashes) and counts what goes through.
//
// Nothing here is a fake of DynamoDB or SQS: the emulator answers every call
// that is forwarded, so storage and queue code is tested against the same
// wire protocol it speaks in production.
package testenv
