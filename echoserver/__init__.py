"""The demo main container: a small web app that shows each request as it arrived.

It stands behind the sidecar (TLS terminated in front of it, on 127.0.0.1:8080) and behind
the ambassador (as server1 and server2), and says which server answered, what the request
looked like when it got there, and how much body came with it. The other endpoints make the
responses the proxies' tests need: any status, large or chunked bodies, slow and dripping
answers, a WebSocket echo and a connection closed on purpose.
"""
