// Preloaded (node --import) into a server written by others that listens on
// every interface when given only a port (server-everything's
// app.listen(PORT)): a listen() given no host listens on 127.0.0.1, so the
// tests never open a port beyond loopback.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first, second] = args;
  const portOnly = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first));
  if (portOnly && typeof second !== 'string') args.splice(1, 0, '127.0.0.1');
  if (first && typeof first === 'object' && !('path' in first) && !first.host) args[0] = { ...first, host: '127.0.0.1' };
  return listen.apply(this, args);
};
