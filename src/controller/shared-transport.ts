/**
 * One UDP socket serves the witness of every HACluster: each cluster gets a view of the
 * socket whose `close` detaches only its own handlers (the Transport port has no way to
 * remove a handler). Every view sees every datagram; each cluster's wire codec drops the
 * others' cheaply (wrong-cluster, before any cryptography).
 */
import type { Peer, Transport } from '../core/ports.js';

type Handler = (datagram: Uint8Array, from: Peer) => void;

export class SharedTransport {
  private readonly views = new Set<Set<Handler>>();

  constructor(private readonly base: Transport) {
    base.onMessage((datagram, from) => {
      for (const handlers of this.views) {
        for (const h of handlers) h(datagram, from);
      }
    });
  }

  address(): Peer {
    return this.base.address();
  }

  /** A Transport for one cluster; closing it detaches it and leaves the socket open. */
  view(): Transport {
    const handlers = new Set<Handler>();
    this.views.add(handlers);
    let closed = false;
    return {
      address: () => this.base.address(),
      send: (to, datagram) => (closed ? Promise.resolve(false) : this.base.send(to, datagram)),
      onMessage: (h) => {
        if (!closed) handlers.add(h);
      },
      close: () => {
        closed = true;
        handlers.clear();
        this.views.delete(handlers);
        return Promise.resolve();
      },
    };
  }

  close(): Promise<void> {
    this.views.clear();
    return this.base.close();
  }
}
