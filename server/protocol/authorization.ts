import type { Principal } from './auth';
import { MemberVerbs, Request } from './messages';

/** What a principal may do with a request. */
export type Access =
  | { kind: 'allow' }
  /** Refused with FORBIDDEN and this reason. */
  | { kind: 'deny'; reason: string }
  /** Answered as for a client with no files: a key never learns what another client stores. */
  | { kind: 'hide' };

/** Verbs that name a client id and act on that client's files. */
const CLIENT_VERBS = new Set<Request['verb']>(['UPLOAD', 'UPLOAD_IF', 'LIST', 'FILES', 'CHANGES', 'DOWNLOAD', 'DOWNLOAD_VERSION', 'DELETE', 'DELETE_IF', 'VERSIONS', 'RESTORE', 'RENAME', 'RENAME_IF']);

/**
 * Who may do what, once a connection has authenticated. Members (the cluster secret)
 * may do everything, and only they may speak for the primary to a replica; an admin
 * key may do what any client may for any client id, plus STATUS and SCRUB; a client
 * key only what concerns its own client id, and learns nothing of other clients. With
 * no secret configured (the report's open protocol, loopback only) everything is open.
 */
export function authorize(principal: Principal, request: Request, node: 'primary' | 'replica'): Access {
  if (principal.kind === 'open') {
    return { kind: 'allow' };
  }
  const memberVerb = MemberVerbs.includes(request.verb) && (node === 'replica' || request.verb !== 'SCRUB');
  if (memberVerb || request.verb === 'REVOKE') {
    if (principal.kind !== 'member') {
      return { kind: 'deny', reason: `${request.verb} is served only to the cluster's own servers (the cluster secret), not to a ${principal.kind} key` };
    }
    if (node === 'replica' && request.verb !== 'REVOKE' && principal.role !== 'primary') {
      return { kind: 'deny', reason: `${request.verb} is served only to the cluster's primary` };
    }
    return { kind: 'allow' };
  }
  if (principal.kind !== 'client') {
    return { kind: 'allow' };
  }
  if (request.verb === 'SCRUB') {
    return { kind: 'deny', reason: 'SCRUB needs an admin key or the cluster secret' };
  }
  if (CLIENT_VERBS.has(request.verb) && 'clientId' in request && request.clientId !== principal.clientId) {
    if (request.verb === 'LIST' || request.verb === 'FILES' || request.verb === 'CHANGES') {
      return { kind: 'hide' };
    }
    return { kind: 'deny', reason: `this key is for client ${principal.clientId}: it cannot read or change the files of client ${request.clientId}` };
  }
  return { kind: 'allow' };
}
