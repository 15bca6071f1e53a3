"""A session's conversation at run time: the actor that drains its inbox into the turn policy
(`actor`), the executor that carries out the policy's actions (`executor`), its ears (`hearing`), its
replies (`reply`, `tool_calls`), the tone mode, and what it is to the gateway (`ports`)."""
