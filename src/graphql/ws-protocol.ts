/**
 * The server side of graphql-ws's graphql-transport-ws protocol (its PROTOCOL.md),
 * without a transport: what graphql-ws's `makeServer` does, built for many idle
 * subscribers. A connection is one `Connection` holding its state in fields (no
 * closure per connection), its init timer lives only until `connection_init`, and its
 * operations form a list through the operations themselves. A subscription whose results
 * come from a `PushStream` is consumed by callback (`PushStream.consume`), so an idle
 * one holds one small `Operation`, not a suspended `for await` frame with its promises.
 *
 * graphql-ws stays the protocol's source of truth: message types, close codes, parsing,
 * validation and serialisation of messages are its exports. Only the hooks this
 * service uses exist, with narrow signatures of our own.
 */
import {
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  getOperationAST,
} from 'graphql';
import {
  CloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  type Message,
  MessageType,
  parseMessage,
  type SubscribePayload,
  stringifyMessage,
} from 'graphql-ws';
import { PushStream, type StreamSink } from '../lib/push-stream.js';

/** The socket as the protocol sees it; the transport adapter implements it. */
export interface ProtocolSocket {
  /** The subprotocol the handshake agreed on ('' when none). */
  readonly protocol: string;
  /** Sends one message; ignored once the socket is closing. */
  sendMessage(data: string): void;
  close(code: number, reason: string): void;
}

type Awaitable<T> = T | Promise<T>;

export interface ProtocolOptions<E> {
  /**
   * Milliseconds a new socket has to send `connection_init` before it is closed with
   * 4408 (default 3,000, graphql-ws's); 0 waits for ever.
   */
  connectionInitWaitMs?: number;
  /** `connection_init` arrived: true acknowledges the connection, false closes it with 4403 Forbidden. */
  onConnect(connection: Connection<E>, params: Record<string, unknown> | undefined): Awaitable<boolean>;
  /** A `subscribe`: the arguments to run it with, or errors to answer with (an `error` message). */
  onSubscribe(connection: Connection<E>, id: string, payload: SubscribePayload): Awaitable<ExecutionArgs | readonly GraphQLError[]>;
  /** Runs a query or mutation (one `next`, then `complete`). */
  execute(args: ExecutionArgs): Awaitable<ExecutionResult>;
  /** Starts a subscription: its results, or one result when it could not start. */
  subscribe(args: ExecutionArgs): Awaitable<AsyncIterable<ExecutionResult> | ExecutionResult>;
  /** The payload of the `next` message for `result` (default: the result with its errors as JSON). */
  onNext?(connection: Connection<E>, result: ExecutionResult): FormattedExecutionResult | undefined;
  /** The payload of the `error` message for `errors` (default: their JSON). */
  onError?(connection: Connection<E>, errors: readonly GraphQLError[]): GraphQLFormattedError[];
  /** Something failed that the protocol has no message for; the socket is then closed with 4500. */
  onInternalError(connection: Connection<E>, error: unknown): void;
}

/** graphql-ws's default wait for `connection_init`. */
const INIT_WAIT_MS = 3000;

/** Waiting for `connection_init`; `connecting` while `onConnect` decides; `closed` once the socket is. */
type State = 'waiting' | 'connecting' | 'acknowledged' | 'closed';

/** A close reason is at most 123 bytes (RFC 6455); graphql-ws shortens long ones the same way. */
function closeReason(reason: string, whenTooLong: string): string {
  return Buffer.byteLength(reason) < 124 ? reason : whenTooLong;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof Object(value)[Symbol.asyncIterator] === 'function';
}

/** Ends a source the client no longer wants; a failing `return()` is the source's problem, not the socket's. */
function stop(source: AsyncIterator<unknown> | null): void {
  if (source === null || typeof source.return !== 'function') return;
  try {
    void Promise.resolve(source.return()).catch(() => undefined);
  } catch {
    // A synchronous throw from return(): nothing more to stop.
  }
}

function initTimedOut<E>(connection: Connection<E>): void {
  connection.initTimedOut();
}

/** One running operation (a subscription, or a query or mutation until its result is sent). */
class Operation<E> implements StreamSink<ExecutionResult> {
  /** Where the results come from, once the operation has started; ended when the client completes. */
  source: AsyncIterator<ExecutionResult> | null = null;
  /** The connection's next operation (see `Connection.operations`). */
  nextOperation: Operation<E> | null = null;
  /** Ended: completed, failed, cancelled by the client or closed with the socket. Nothing more is sent for it. */
  ended = false;

  constructor(
    private readonly connection: Connection<E>,
    readonly id: string,
  ) {}

  next(result: ExecutionResult): void {
    this.connection.sendResult(this, result);
  }

  complete(): void {
    this.connection.finish(this);
  }

  error(error: unknown): void {
    this.connection.failOperation(this, error);
  }

  /** Results of a source that is not a PushStream, pulled one at a time. */
  pull(): void {
    (this.source as AsyncIterator<ExecutionResult>).next().then(
      (step) => {
        if (!this.connection.isRunning(this)) return;
        if (step.done === true) {
          this.complete();
          return;
        }
        this.next(step.value);
        if (this.connection.isRunning(this)) this.pull();
      },
      (error: unknown) => this.error(error),
    );
  }
}

/** One graphql-transport-ws connection over one socket. */
export class Connection<E> {
  private state: State = 'waiting';
  private initTimer: NodeJS.Timeout | null = null;
  /**
   * Running operations, from `subscribe` until their end, as a list through the
   * operations: a socket runs a few (graphql.maxSubscriptionsPerSocket at most), and
   * a Map would cost an idle connection more than its operation does.
   */
  private operations: Operation<E> | null = null;

  constructor(
    private readonly options: ProtocolOptions<E>,
    private readonly socket: ProtocolSocket,
    /** What the transport and the hooks keep about the connection. */
    readonly extra: E,
  ) {
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      this.state = 'closed';
      socket.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    const wait = options.connectionInitWaitMs ?? INIT_WAIT_MS;
    if (wait > 0 && Number.isFinite(wait)) this.initTimer = setTimeout(initTimedOut, wait, this);
  }

  /** Operations running, counting one whose `subscribe` is being handled now. */
  get operationCount(): number {
    let count = 0;
    for (let operation = this.operations; operation !== null; operation = operation.nextOperation) count++;
    return count;
  }

  /** A text message from the client. */
  received(data: string): void {
    let message: Message;
    try {
      message = parseMessage(data);
    } catch {
      this.close(CloseCode.BadRequest, 'Invalid message received');
      return;
    }
    try {
      switch (message.type) {
        case MessageType.ConnectionInit:
          this.init(message.payload);
          return;
        case MessageType.Ping:
          this.send(message.payload ? { type: MessageType.Pong, payload: message.payload } : { type: MessageType.Pong });
          return;
        case MessageType.Pong:
          return;
        case MessageType.Subscribe:
          this.subscribe(message.id, message.payload);
          return;
        case MessageType.Complete:
          this.cancel(message.id);
          return;
        default:
          // A server's message (next, error, connection_ack) from the client. graphql-ws
          // throws here, which its adapter answers with 4500 as if the server had failed;
          // the protocol calls it an invalid message (4400).
          this.close(CloseCode.BadRequest, closeReason(`Unexpected message of type ${message.type} received`, 'Invalid message received'));
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** The socket closed: every operation ends, and nothing more is sent. */
  closed(): void {
    this.state = 'closed';
    this.clearInitTimer();
    let operation = this.operations;
    this.operations = null;
    while (operation !== null) {
      operation.ended = true;
      stop(operation.source);
      operation = operation.nextOperation;
    }
  }

  /** The init timer fired (see `connectionInitWaitMs`). */
  initTimedOut(): void {
    this.initTimer = null;
    if (this.state === 'waiting') this.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
  }

  isRunning(operation: Operation<E>): boolean {
    return !operation.ended;
  }

  /** A result of `operation` as a `next` message, unless the operation has ended. */
  sendResult(operation: Operation<E>, result: ExecutionResult): void {
    if (!this.isRunning(operation)) return;
    try {
      const payload = this.options.onNext?.(this, result) ?? withErrorsAsJson(result);
      this.send({ id: operation.id, type: MessageType.Next, payload: payload as FormattedExecutionResult<Record<string, unknown>> });
    } catch (error) {
      this.fail(error);
    }
  }

  /** `operation` has sent all it has: `complete`, unless the client ended it first. */
  finish(operation: Operation<E>): void {
    if (!this.isRunning(operation)) return;
    this.remove(operation);
    try {
      this.send({ id: operation.id, type: MessageType.Complete });
    } catch (error) {
      this.fail(error);
    }
  }

  /** `operation`'s results failed: an `error` message ends it (no `complete` follows). */
  failOperation(operation: Operation<E>, error: unknown): void {
    if (!this.isRunning(operation)) return;
    this.remove(operation);
    const cause = error instanceof Error ? error : new Error(String(error));
    try {
      this.sendErrors(operation.id, [new GraphQLError(cause.message, { originalError: cause })]);
    } catch (failure) {
      this.fail(failure);
    }
  }

  private init(payload: Record<string, unknown> | null | undefined): void {
    if (this.state !== 'waiting') {
      this.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
      return;
    }
    this.state = 'connecting';
    this.clearInitTimer();
    const params = typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? payload : undefined;
    this.connect(params).catch((error: unknown) => this.fail(error));
  }

  private async connect(params: Record<string, unknown> | undefined): Promise<void> {
    const permitted = await this.options.onConnect(this, params);
    if (this.state === 'closed') return;
    if (!permitted) {
      this.close(CloseCode.Forbidden, 'Forbidden');
      return;
    }
    this.state = 'acknowledged';
    this.send({ type: MessageType.ConnectionAck });
  }

  private subscribe(id: string, payload: SubscribePayload): void {
    if (this.state !== 'acknowledged') {
      this.close(CloseCode.Unauthorized, 'Unauthorized');
      return;
    }
    if (this.find(id) !== null) {
      this.close(CloseCode.SubscriberAlreadyExists, closeReason(`Subscriber for ${id} already exists`, 'Subscriber already exists'));
      return;
    }
    const operation = new Operation(this, id);
    operation.nextOperation = this.operations;
    this.operations = operation;
    this.start(operation, payload).catch((error: unknown) => {
      if (this.isRunning(operation)) this.remove(operation);
      this.fail(error);
    });
  }

  private async start(operation: Operation<E>, payload: SubscribePayload): Promise<void> {
    const id = operation.id;
    const args = await this.options.onSubscribe(this, id, payload);
    if (Array.isArray(args)) {
      if (args.length === 0) throw new Error('onSubscribe returned an empty list of errors');
      this.answerWithErrors(operation, args);
      return;
    }
    const execution = args as ExecutionArgs;
    const ast = getOperationAST(execution.document, execution.operationName);
    if (ast === null || ast === undefined) {
      this.answerWithErrors(operation, [new GraphQLError('Unable to identify operation')]);
      return;
    }
    let result: ExecutionResult;
    if (ast.operation === 'subscription') {
      const outcome = await this.options.subscribe(execution);
      if (isAsyncIterable(outcome)) {
        const source = outcome[Symbol.asyncIterator]();
        // Completed by the client (or its socket closed) while starting.
        if (!this.isRunning(operation)) {
          stop(source);
          return;
        }
        operation.source = source;
        if (source instanceof PushStream) (source as PushStream<ExecutionResult>).consume(operation);
        else operation.pull();
        return;
      }
      result = outcome;
    } else {
      result = await this.options.execute(execution);
    }
    // One result: `next` and `complete`, unless the client completed it meanwhile.
    this.sendResult(operation, result);
    this.finish(operation);
  }

  /** `subscribe` refused by onSubscribe or without an operation to run: one `error` message. */
  private answerWithErrors(operation: Operation<E>, errors: readonly GraphQLError[]): void {
    if (!this.isRunning(operation)) return;
    this.remove(operation);
    this.sendErrors(operation.id, errors);
  }

  private sendErrors(id: string, errors: readonly GraphQLError[]): void {
    const payload = this.options.onError?.(this, errors) ?? errors.map((error) => error.toJSON());
    this.send({ id, type: MessageType.Error, payload });
  }

  /** The client's `complete`: the operation ends without a message back. */
  private cancel(id: string): void {
    const operation = this.find(id);
    if (operation === null) return;
    this.remove(operation);
    stop(operation.source);
  }

  private find(id: string): Operation<E> | null {
    let operation = this.operations;
    while (operation !== null && operation.id !== id) operation = operation.nextOperation;
    return operation;
  }

  private remove(operation: Operation<E>): void {
    operation.ended = true;
    if (this.operations === operation) this.operations = operation.nextOperation;
    else {
      let before = this.operations;
      while (before !== null && before.nextOperation !== operation) before = before.nextOperation;
      if (before !== null) before.nextOperation = operation.nextOperation;
    }
    operation.nextOperation = null;
  }

  private send(message: Message): void {
    this.socket.sendMessage(stringifyMessage(message));
  }

  private close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  /** The server failed: logged, and the socket closed with 4500 (its operations end when it has closed). */
  private fail(error: unknown): void {
    this.options.onInternalError(this, error);
    this.close(CloseCode.InternalServerError, 'Internal server error');
  }

  private clearInitTimer(): void {
    if (this.initTimer !== null) clearTimeout(this.initTimer);
    this.initTimer = null;
  }
}

/** graphql-ws's `next` payload: the result, with its errors (when it has any) as JSON. */
function withErrorsAsJson(result: ExecutionResult): FormattedExecutionResult {
  const { errors, ...rest } = result;
  return errors === undefined ? (rest as FormattedExecutionResult) : { ...rest, errors: errors.map((error) => error.toJSON()) };
}
