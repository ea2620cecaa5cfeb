// Who is asking: bearer tokens as kube-apiserver's token authenticator checks them. With a `token`, every
// request must carry it (and `acceptToken` rotates it); with `users`, every request must carry one of
// their tokens, and the request is that user's. A request that fails either is answered 401.

import type { IncomingMessage } from 'node:http';

export type Authentication =
  { readonly ok: false } | { readonly ok: true; readonly user: string | undefined };

export type Authenticator = {
  authenticate(req: IncomingMessage): Authentication;
  /** From now on, the bearer token every request must carry (as after a token rotation). */
  acceptToken(token: string): void;
};

export function authenticator(
  token: string | undefined,
  users: Readonly<Record<string, string>> | undefined,
): Authenticator {
  let acceptedToken = token;
  return {
    authenticate: (req) => {
      if (acceptedToken !== undefined && req.headers.authorization !== `Bearer ${acceptedToken}`)
        return { ok: false };
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const user =
        bearer !== undefined && users !== undefined && Object.hasOwn(users, bearer)
          ? users[bearer]
          : undefined;
      if (users !== undefined && user === undefined) return { ok: false };
      return { ok: true, user };
    },
    acceptToken: (next) => {
      acceptedToken = next;
    },
  };
}
