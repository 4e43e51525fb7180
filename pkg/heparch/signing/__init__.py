"""Signatures of bundles (spec section 6): Ed25519 keys, DSSE envelopes, OpenSSH sshsig, trust policies.

Split by idea, each module importing only those below it (an import-linter contract holds it):

- :mod:`heparch.signing.check`: checking the signatures of a bundle and the trust policy's verdict;
- :mod:`heparch.signing.envelope`: the formats as written (DSSE statement and PAE, sshsig);
  :mod:`heparch.signing.trust`: trust policies (which keys may sign for which roles, thresholds);
- :mod:`heparch.signing.keys`: Ed25519 keys, the only module of heparch importing ``cryptography``.

All of it sits below :mod:`heparch.verify`, which checks signatures before it hashes any payload;
signing a bundle in place (:mod:`heparch.sign`) verifies it first, so it sits above.
"""
