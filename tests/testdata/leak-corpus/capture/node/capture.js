'use strict';
// Captures the Node part of the leak corpus.
//
// Strategy: the real OpenTelemetry JS SDK (OTLP/HTTP JSON exporters) sends spans and log
// records to the capturing receiver (../receiver.py) under the sources `otel-node` and
// `vercel-ai`; the Vercel AI SDK runs generateText() with its own mock model (ai/test) and
// telemetry on, so its spans are the SDK's own. pino, bunyan and winston log one real
// HTTP request (a loopback server, headers as a browser behind a proxy sends them) and
// their JSON lines are written to LINES_DIR/<logger>.log; ../wrap_lines.py turns those
// into OTLP log records. Personal values come from ../plants.tsv.
//
// usage: node capture.js RECEIVER_BASE_URL LINES_DIR

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Writable } = require('node:stream');
const { createTraceState, SpanKind, SpanStatusCode, TraceFlags } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');

function readPlants() {
  const out = {};
  for (const line of fs.readFileSync(path.join(__dirname, '..', 'plants.tsv'), 'utf8').split('\n')) {
    if (!line) continue;
    const [id, , value] = line.split('\t');
    out[id] = value.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
  }
  return out;
}

const P = readPlants();
const [base, linesDir] = process.argv.slice(2);

function resource(service) {
  return resourceFromAttributes({
    'service.name': service, 'service.version': '3.1.0', 'deployment.environment.name': 'leak-corpus',
  });
}

function tracerProvider(source) {
  return new BasicTracerProvider({
    resource: resource(source),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${base}/${source}/v1/traces` }))],
  });
}

async function otelNode() {
  const provider = tracerProvider('otel-node');
  const tracer = provider.getTracer('checkout-service', '3.1.0');
  const span = tracer.startSpan('POST /login', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': 'POST', 'http.route': '/login', 'http.response.status_code': 500,
      'app.seen_note': `first seen from ${P.p0607}`,
    },
    // The batch job that caused this request, with the tracestate a vendor wrote a user into.
    links: [{
      context: {
        traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED,
        isRemote: true, traceState: createTraceState(`vendor=user:${P.p0006},rojo=00f067aa0ba902b7`),
      },
      attributes: { 'link.kind': 'caused-by' },
    }],
  });
  span.addEvent(`welcome mail queued for ${P.p0608}`, { 'mail.template': 'welcome' });
  const err = new Error(`no account for ${P.p0601}`);
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  span.end();
  await provider.shutdown();

  const logs = new LoggerProvider({
    resource: resource('otel-node'),
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${base}/otel-node/v1/logs` }) })],
  });
  const logger = logs.getLogger('checkout-service', '3.1.0');
  const failure = new Error(`password reset failed for ${P.p0604}`);
  logger.emit({
    severityNumber: SeverityNumber.ERROR, severityText: 'ERROR',
    body: {
      msg: 'password reset failed',
      user: { id: P.p0602, email: P.p0603 },
      err: { type: 'Error', message: failure.message, stack: failure.stack },
      req: { method: 'POST', url: '/reset', headers: { cookie: `sid=${P.p0609}` } },
    },
    attributes: { 'http.route': '/reset', 'app.visits': { [P.p0605]: 2, anonymous: 7 } },
  });
  logger.emit({
    severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'reply-to header captured',
    attributes: { 'app.raw_header': new TextEncoder().encode(`Reply-To: ${P.p0606}`), 'http.route': '/reset' },
  });
  await logs.shutdown();
}

async function vercelAi() {
  const { generateText } = require('ai');
  const { MockLanguageModelV2 } = require('ai/test');
  const provider = tracerProvider('vercel-ai');
  const model = new MockLanguageModelV2({
    provider: 'mock-provider', modelId: 'mock-model-id',
    doGenerate: async () => ({
      content: [{ type: 'text', text: P.p0422 }],
      finishReason: 'stop',
      usage: { inputTokens: 17, outputTokens: 5, totalTokens: 22 },
      warnings: [],
    }),
  });
  await generateText({
    model,
    prompt: `${P.p0421}; reply to ${P.p0423}`,
    experimental_telemetry: { isEnabled: true, functionId: 'complaint-writer', tracer: provider.getTracer('ai') },
  });
  await provider.shutdown();
}

// --- the loggers: one real request, logged as each logger's users log it -------------------

function lineSink(lines) {
  return new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(line);
      done();
    },
  });
}

function fields(name) {
  const L = (role) => P[`logger.${name}.${role}`];
  return {
    L,
    err: new Error(`no account for ${L('err_email')}`),
    user: { id: L('user_id'), email: L('user_email'), name: L('user_name') },
    context: { ip: L('ctx_ip6'), sessionId: L('session'), note: `client retried with password=${L('password')}` },
  };
}

function requestHeaders(name) {
  const L = (role) => P[`logger.${name}.${role}`];
  return {
    authorization: `Bearer ${L('bearer')}`, cookie: `sid=${L('cookie')}; theme=dark`,
    'x-forwarded-for': L('fwd_ip'), 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)',
  };
}

// Behind the load balancer the app takes the client address from its proxy (trust proxy),
// so the logged remoteAddress is the user's, not the loopback peer's.
function withClientAddress(serialized, address) {
  return { ...serialized, remoteAddress: address };
}

function logPino(req, lines) {
  const pino = require('pino');
  const { L, err, user, context } = fields('pino');
  const logger = pino({
    base: { pid: 4242, hostname: 'checkout-7f9c' },
    serializers: { err: pino.stdSerializers.err, req: (r) => withClientAddress(pino.stdSerializers.req(r), L('remote_ip')) },
  }, lineSink(lines));
  logger.info({ req, user, route: '/login' }, 'request received');
  logger.error({ err, req, user, context }, `login failed for ${L('msg_email')}`);
}

function logBunyan(req, lines) {
  const bunyan = require('bunyan');
  const { L, err, user, context } = fields('bunyan');
  const logger = bunyan.createLogger({
    name: 'checkout', hostname: 'checkout-7f9c',
    streams: [{ stream: lineSink(lines) }],
    serializers: { err: bunyan.stdSerializers.err, req: (r) => withClientAddress(bunyan.stdSerializers.req(r), L('remote_ip')) },
  });
  logger.info({ req, user, route: '/login' }, 'request received');
  logger.error({ err, req, user, context }, `login failed for ${L('msg_email')}`);
}

function logWinston(req, lines) {
  const winston = require('winston');
  const { L, err, user, context } = fields('winston');
  const logger = winston.createLogger({
    level: 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    defaultMeta: { service: 'checkout' },
    transports: [new winston.transports.Stream({ stream: lineSink(lines) })],
  });
  const reqMeta = { method: req.method, url: req.url, headers: req.headers, remoteAddress: L('remote_ip') };
  logger.info('request received', { req: reqMeta, user, route: '/login' });
  logger.error(`login failed for ${L('msg_email')}`, { error: { message: err.message, stack: err.stack }, req: reqMeta, user, context });
}

async function loggers() {
  const loggersByName = { pino: logPino, bunyan: logBunyan, winston: logWinston };
  const lines = {};
  const server = http.createServer((req, res) => {
    const name = req.url.split('?')[0].split('/')[2];
    lines[name] = [];
    loggersByName[name](req, lines[name]);
    res.end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  for (const name of Object.keys(loggersByName)) {
    await new Promise((resolve, reject) => {
      http.request({ host: '127.0.0.1', port, method: 'POST', path: `/login/${name}?next=%2Fhome`, headers: requestHeaders(name) },
        (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end();
    });
  }
  server.close();
  await new Promise((resolve) => setTimeout(resolve, 200)); // winston's stream transport writes asynchronously
  fs.mkdirSync(linesDir, { recursive: true });
  for (const [name, out] of Object.entries(lines)) fs.writeFileSync(path.join(linesDir, `${name}.log`), `${out.join('\n')}\n`);
}

async function main() {
  await otelNode();
  await vercelAi();
  await loggers();
}

main().catch((err) => { console.error(err); process.exit(1); });
