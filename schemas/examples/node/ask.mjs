#!/usr/bin/env node
// Ask Cairn one question from Node.js with nothing but the contract in schemas/:
// produce a cairn.request.submitted.v1 on cairn.requests, read its cairn.response.completed.v1 on
// cairn.responses. See README.md beside this file and schemas/README.md.
//
// Output: one JSON object per line on stdout: {"joined": ...}, {"sent": ...}, {"answer": ...}.
// Exit status: 0 answered, 1 no answer in time, 2 invalid input or answer.

import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Kafka, Partitioners, logLevel } from "kafkajs";

const REQUEST_TYPE = "cairn.request.submitted.v1";
const RESPONSE_TYPE = "cairn.response.completed.v1";
const REQUESTS = "cairn.requests";
const RESPONSES = "cairn.responses";
const SCHEMAS = new URL("../../", import.meta.url); // the schemas/ folder

const { values: opts } = parseArgs({
  options: {
    bootstrap: { type: "string", default: process.env.CAIRN_KAFKA_BOOTSTRAP ?? "127.0.0.1:19092" },
    prompt: { type: "string", default: "qa" },
    question: { type: "string", default: "What does the yield statement do?" },
    topic: { type: "string" }, // the qa prompt's optional `topic` variable
    tenant: { type: "string", default: "default" },
    source: { type: "string", default: "urn:example:node" },
    "request-id": { type: "string" },
    "timeout-s": { type: "string", default: "180" },
    // the group's session timeout: a join on the local broker takes about half of it; 6000 is the
    // lowest Apache Kafka accepts by default (group.min.session.timeout.ms)
    "session-timeout-ms": { type: "string", default: process.env.CAIRN_KAFKA_SESSION_TIMEOUT_MS ?? "6000" },
  },
});

/** A validator of one event type's payload, from its JSON Schema file (draft 2020-12). */
function validatorFor(eventType) {
  const [, family, version] = eventType.match(/^(.*)\.(v\d+)$/);
  const schema = JSON.parse(readFileSync(new URL(`${family}/${version}.schema.json`, SCHEMAS), "utf8"));
  const ajv = new Ajv2020({ allErrors: true }); // strict mode stays on ...
  for (const keyword of ["x-cairn-event-type", "x-cairn-key", "x-cairn-topic"]) {
    ajv.addKeyword(keyword); // ... so Cairn's annotations must be declared (or pass `strict: false`)
  }
  addFormats(ajv); // without it `format: date-time` is not checked
  return ajv.compile(schema);
}

function check(validate, payload, what) {
  if (!validate(payload)) {
    const errors = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    console.error(`${what} is not valid: ${errors}`);
    process.exit(2);
  }
}

const utf8 = (value) => Buffer.from(value, "utf8");
const text = (value) => (value === undefined || value === null ? undefined : value.toString("utf8"));

const requestId = opts["request-id"] ?? `req-${randomUUID()}`;
const eventId = randomUUID();
const now = new Date().toISOString(); // RFC 3339 with an offset ("Z")
const traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
const payload = {
  request_id: requestId,
  tenant: opts.tenant,
  prompt: opts.prompt,
  ...(opts.topic ? { variables: { topic: opts.topic } } : {}),
  messages: [{ role: "user", content: opts.question }], // the qa prompt's `question`
  submitted_at: now,
};
check(validatorFor(REQUEST_TYPE), payload, "the request");
const validateAnswer = validatorFor(RESPONSE_TYPE);

const headers = {
  ce_specversion: "1.0",
  ce_id: eventId,
  ce_source: opts.source,
  ce_type: REQUEST_TYPE,
  ce_time: now,
  ce_subject: requestId,
  "content-type": "application/json",
  ce_dataschema: "urn:cairn:schema:cairn.request.submitted:v1",
  ce_correlationid: requestId,
  ce_tenant: opts.tenant,
  traceparent,
};

const sessionTimeout = Number(opts["session-timeout-ms"]);
const kafka = new Kafka({
  clientId: "cairn-example-node",
  brokers: opts.bootstrap.split(","),
  logLevel: logLevel.WARN,
});
const admin = kafka.admin();
// DefaultPartitioner is Java's murmur2, the same key -> partition mapping as Cairn's Python clients
// (KafkaJS's LegacyPartitioner is not)
const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner,
  allowAutoTopicCreation: false,
});
// A group-only client: a fresh group per run here. A long-lived application keeps one group and
// matches answers by key; it needs no seek, only to have joined before it sends.
const consumer = kafka.consumer({
  groupId: `cairn-example-node-${randomUUID()}`,
  sessionTimeout,
  heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 4)),
  allowAutoTopicCreation: false,
});

let timer;
try {
  await Promise.all([admin.connect(), producer.connect(), consumer.connect()]);

  // 1. The ends of cairn.responses *before* sending: the answer can only come after them.
  const ends = await admin.fetchTopicOffsets(RESPONSES);

  // 2. Join the group; on joining, start every partition at the end fixed in step 1.
  const joinStarted = Date.now();
  const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve));
  let answered;
  const answer = new Promise((resolve) => {
    answered = resolve;
  });
  await consumer.subscribe({ topic: RESPONSES, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const h = message.headers ?? {};
      if (text(message.key) !== requestId || text(h.ce_type) !== RESPONSE_TYPE) return;
      answered({ partition, offset: message.offset, message });
    },
  });
  const join = await joined;
  for (const { partition, offset } of ends) consumer.seek({ topic: RESPONSES, partition, offset });
  console.log(
    JSON.stringify({
      joined: {
        group: join.payload.groupId,
        ms: Date.now() - joinStarted,
        partitions: join.payload.memberAssignment[RESPONSES] ?? [],
      },
    }),
  );

  // 3. Send the request: key = request id, CloudEvents attributes in headers, value = bare JSON.
  const [sent] = await producer.send({
    topic: REQUESTS,
    acks: -1,
    messages: [
      {
        key: utf8(requestId),
        value: utf8(JSON.stringify(payload)),
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, utf8(v)])),
      },
    ],
  });
  console.log(JSON.stringify({ sent: { request_id: requestId, ce_id: eventId, traceparent, partition: sent.partition } }));

  // 4. Wait for the answer with the same key.
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, Number(opts["timeout-s"]) * 1000, null);
  });
  const got = await Promise.race([answer, timeout]);
  if (got === null) {
    console.error(`no answer for ${requestId} on ${RESPONSES} within ${opts["timeout-s"]} s (see cairn.deadletter)`);
    process.exitCode = 1;
  } else {
    const response = JSON.parse(text(got.message.value)); // application/json: Cairn's publishers write JSON
    check(validateAnswer, response, "the answer");
    const answerHeaders = Object.fromEntries(
      Object.entries(got.message.headers ?? {}).map(([k, v]) => [k, text(v)]),
    );
    console.log(JSON.stringify({ answer: { partition: got.partition, offset: got.offset, headers: answerHeaders, response } }));
  }
} finally {
  clearTimeout(timer);
  await Promise.allSettled([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
}
