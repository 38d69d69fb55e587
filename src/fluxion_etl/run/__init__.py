"""The run, stage by stage: plan (:mod:`.budget`), fetch each store in a child process
(:mod:`.fetch`), stage its batches (:mod:`.stage`), clean each row (:mod:`.clean`), transform the
whole store (:mod:`.transform`), judge it (:mod:`.guard`), and the loop that drives them and
publishes through the target seam (:mod:`.pipeline`).
"""
