"""`python -m hopsim.emulate`: one real IMDS endpoint (hopsim.emulate.server),
for use by hand inside a namespace: ip netns exec NS python -m hopsim.emulate -h"""

from hopsim.emulate.server import main

main()
