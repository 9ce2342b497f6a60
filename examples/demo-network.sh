# Where the examples' host names are, on this machine (sourced by the demo scripts).
# Loopback stands for public addresses; bitbucket.internal resolves to a private one and is
# reached only through the CONNECT proxy, as a private server would be.
BBCONN_DEMO_FLAGS=(
  --address-class 127.0.0.0/8=public
  --connect-to api.bitbucket.org:443:127.0.0.1:18443
  --connect-to bitbucket.org:443:127.0.0.1:18443
  --connect-to bitbucket.example.com:443:127.0.0.1:18443
  --connect-to expired.bitbucket.example.com:443:127.0.0.1:18444
  --connect-to selfsigned.bitbucket.example.com:443:127.0.0.1:18445
  --connect-to renewal.bitbucket.example.com:443:127.0.0.1:18446
  --connect-to legacy.bitbucket.example.com:443:127.0.0.1:18447
  --connect-to bitbucket.example.com:7990:127.0.0.1:17990
  --connect-to ssh.bitbucket.org:22:127.0.0.1:17922
  --connect-to bitbucket.org:22:127.0.0.1:17921
  --connect-to egress-proxy.infra:3128:127.0.0.1:13128
  --connect-to auth-proxy.infra:3128:127.0.0.1:13129
  --resolve bitbucket.internal:443:10.20.30.40
)
