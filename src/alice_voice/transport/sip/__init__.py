"""SIP calls straight from a PBX or a trunk: the signalling (aiosipua's user agent server, guarded here),
who may call, the SDP, and the call's RTP media as a session transport like the others."""
