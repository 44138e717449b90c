"""The bundled demo municipality: SS 12000 list files to try autosynk on.

``generate.generate()`` writes a deterministic, realistic register (small, medium or
large); ``mutate.mutate()`` applies one day of typical changes to it in place;
``rollover.rollover()`` does the register's own change to the next school year.
"""
