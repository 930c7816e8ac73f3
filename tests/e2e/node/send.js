'use strict';
// Sends traces, metrics and logs through redact-proxy with the real OpenTelemetry JS
// SDK (@opentelemetry/sdk-node and the OTLP/HTTP exporters, i.e. OTLP-JSON), playing
// a Railgun gateway (service.name railgun-gateway).
//
// The data mirrors tests/e2e/senders/python_sender.py: a request span with a child DB
// span and events carrying the canaries of tests/e2e/pii.py, a health-check span the
// doctrine drops (this one by `http.target` with a query string), metrics with canary
// data-point attributes, and a log record with canaries in attributes and body.
//
// Every export result is recorded; exit code 1 if any failed. Prints a JSON report.
//
// usage: node send.js --http http://HOST:PORT --run RUN_ID --pii PII.json

const fs = require('node:fs');
const { context, metrics, trace, SpanKind } = require('@opentelemetry/api');
const { logs, SeverityNumber } = require('@opentelemetry/api-logs');
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');

function parseArgs(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const required of ['http', 'run', 'pii']) {
    if (!out[required]) throw new Error(`missing --${required}`);
  }
  return out;
}

const results = { traces: [], metrics: [], logs: [] };

// Wraps an exporter's export() to record each result code (0 = SUCCESS).
function recording(signal, exporter) {
  const inner = exporter.export.bind(exporter);
  exporter.export = (items, done) => inner(items, (result) => {
    results[signal].push(result.code === 0 ? 'ok' : `code=${result.code} ${result.error || ''}`);
    done(result);
  });
  return exporter;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const args = parseArgs(process.argv);
  const pii = JSON.parse(fs.readFileSync(args.pii, 'utf8'));
  const { personal, hashed } = pii;

  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': 'railgun-gateway',
      'service.version': 'e2e',
      'deployment.environment.name': 'e2e',
      ...pii.resource_personal,
    }),
    spanProcessors: [new SimpleSpanProcessor(recording('traces',
      new OTLPTraceExporter({ url: `${args.http}/v1/traces`, timeoutMillis: 10000 })))],
    metricReader: new PeriodicExportingMetricReader({
      exporter: recording('metrics', new OTLPMetricExporter({ url: `${args.http}/v1/metrics`, timeoutMillis: 10000 })),
      exportIntervalMillis: 1000,
    }),
    logRecordProcessors: [new SimpleLogRecordProcessor({
      exporter: recording('logs', new OTLPLogExporter({ url: `${args.http}/v1/logs`, timeoutMillis: 10000 })),
    })],
    instrumentations: [],
  });
  sdk.start();

  const tracer = trace.getTracer('railgun.e2e.node');
  const traceIds = {};

  const request = tracer.startSpan(`POST ${pii.route}`, {
    kind: SpanKind.SERVER,
    attributes: {
      'e2e.run': args.run,
      'http.request.method': 'POST',
      'http.route': pii.route,
      'http.response.status_code': 201,
      'message.content': personal['message.content'],
      'user.email': personal['user.email'],
      'client.address': personal['client.address'],
      'http.request.header.authorization': personal['http.request.header.authorization'],
      'user.identity_key': personal['user.identity_key'],
      'url.full': personal['url.full'],
      ...hashed,
    },
  });
  traceIds.request = request.spanContext().traceId;
  const ctx = trace.setSpan(context.active(), request);
  const db = tracer.startSpan('SELECT messages', {
    kind: SpanKind.CLIENT,
    attributes: {
      'e2e.run': args.run,
      'db.system': 'postgresql',
      'db.operation.name': 'SELECT',
      'db.statement': personal['db.statement'],
    },
  }, ctx);
  db.end();
  request.addEvent('message.sent', {
    'messaging.message.body.size': 27,
    'recipient.user_id': personal['recipient.user_id'],
  });
  request.addEvent('exception', {
    'exception.type': 'UniqueViolation',
    'exception.message': personal['exception.message'],
  });
  request.end();

  const health = tracer.startSpan('GET /readyz', {
    kind: SpanKind.SERVER,
    attributes: {
      'e2e.run': args.run,
      'test.healthcheck': true,
      'http.request.method': 'GET',
      'http.target': '/readyz?probe=kubelet',
      'http.response.status_code': 200,
    },
  });
  traceIds.healthcheck = health.spanContext().traceId;
  health.end();

  const meter = metrics.getMeter('railgun.e2e.node');
  const duration = meter.createHistogram('http.server.request.duration', { unit: 's' });
  const messages = meter.createCounter('railgun.messages', { unit: '{message}' });
  const connections = meter.createUpDownCounter('railgun.websocket.connections', { unit: '{connection}' });
  connections.add(5);
  for (let i = 0; i < 6; i += 1) {
    duration.record(0.02 + 0.01 * i, {
      'http.request.method': 'GET', 'http.route': '/rooms', 'http.response.status_code': 200,
      'user.email': personal['user.email'], 'client.address': personal['client.address'],
    });
    messages.add(2, { 'room.id': hashed['room.id'], 'user.email': personal['user.email'] });
    await sleep(500);
  }

  logs.getLogger('railgun.e2e.node').emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: { event: 'user.login', 'e2e.run': args.run, 'user.email': personal['user.email'],
      'message.content': personal['message.content'] },
    attributes: { 'e2e.run': args.run, 'user.id': hashed['user.id'], 'user.email': personal['user.email'],
      'client.address': personal['client.address'] },
  });

  await sdk.shutdown();

  const failed = Object.fromEntries(Object.entries(results).map(([s, rs]) => [s, rs.filter((r) => r !== 'ok')]));
  const report = {
    service: 'railgun-gateway',
    run: args.run,
    trace_ids: traceIds,
    exports: Object.fromEntries(Object.entries(results).map(([s, rs]) => [s, rs.length])),
    failed,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const missing = Object.values(results).some((rs) => rs.length === 0);
  if (missing || Object.values(failed).some((f) => f.length)) {
    process.stderr.write(`node sender: exports failed or missing: ${JSON.stringify(results)}\n`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`node sender: ${err.stack || err}\n`);
  process.exitCode = 1;
});
