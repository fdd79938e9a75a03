import { parseHostPort } from '../config/cluster-layout';
import { DfsError } from '../protocol';

export interface HostPort {
  host: string;
  port: number;
}

export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * `HOST:PORT,HOST:PORT,...` (a list of such strings too, each of which may hold
 * commas): every address checked, duplicates dropped, order kept.
 */
export function parseAddressList(value: string | readonly string[]): HostPort[] {
  const items = (typeof value === 'string' ? [value] : value).flatMap((text) => text.split(','));
  const addresses: HostPort[] = [];
  for (const item of items) {
    if (item.trim() === '') {
      throw new DfsError('BAD_HEADER', `${JSON.stringify(typeof value === 'string' ? value : value.join(','))} has an empty address; give HOST:PORT,HOST:PORT,...`);
    }
    const address = parseHostPort(item);
    if (!addresses.some((known) => known.host === address.host && known.port === address.port)) {
      addresses.push(address);
    }
  }
  if (addresses.length === 0) {
    throw new DfsError('BAD_HEADER', 'no primary address given; give HOST:PORT,HOST:PORT,...');
  }
  return addresses;
}

/**
 * The primaries a client may talk to, and which of them answered last. Requests start
 * there, so once a failover has been followed every later request goes straight to the
 * new leader. Shared by every client made from the same settings (the extension makes
 * one per operation).
 */
export class PrimaryAddresses {
  readonly all: readonly HostPort[];
  /**
   * Set once a request has waited out the failover and none answered; cleared as soon
   * as one does. Meanwhile requests try each address once instead of waiting again, so
   * reads from the replicas do not each pay the wait.
   */
  noneAnswering = false;
  private preferred = 0;

  constructor(addresses: readonly HostPort[]) {
    if (addresses.length === 0) {
      throw new DfsError('BAD_HEADER', 'no primary address given');
    }
    this.all = [...addresses];
  }

  /** Every address once, the one that answered last first, then the others in their configured order after it. */
  order(): HostPort[] {
    return this.all.map((_, index) => this.all[(this.preferred + index) % this.all.length]);
  }

  /** The address that answered last (the first configured one until any answers). */
  get current(): HostPort {
    return this.all[this.preferred];
  }

  answered(address: HostPort): void {
    const index = this.all.findIndex((known) => known.host === address.host && known.port === address.port);
    if (index >= 0) {
      this.preferred = index;
      this.noneAnswering = false;
    }
  }

  describe(): string {
    return this.all.map(formatHostPort).join(', ');
  }
}
