/**
 * Events of the SDK's EventTargets (the outbox, the push consumer). A plain
 * Event subclass with a `detail`, because `CustomEvent` is missing from some
 * server runtimes while `Event` and `EventTarget` exist everywhere.
 */
export class EdgemqEvent<T> extends Event {
  /** What the event is about; its shape depends on the event type. */
  readonly detail: T;

  constructor(type: string, detail: T) {
    super(type);
    this.detail = detail;
  }
}
