"""gemmi.read_structure over files, for bench:parse (run with the system /usr/bin/python3).

    gemmi_read.py RUNS FILE...   prints one JSON line: total best-of-RUNS seconds (wall and CPU, summed
                                 over files), atoms (first model, summed), files gemmi refused, peak RSS in MB.
Only read_structure is timed: not the interpreter start, not the import.
"""
import json
import resource
import sys
import time

import gemmi

runs = int(sys.argv[1])
wall = cpu = 0.0
atoms = 0
failed = []
for path in sys.argv[2:]:
    best_wall = best_cpu = None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        try:
            st = gemmi.read_structure(path)
        except Exception as error:  # a file gemmi refuses still cost it the time until it gave up
            st = None
            if path not in failed:
                failed.append(path)
        w, c = time.perf_counter() - w, time.process_time() - c
        if best_wall is None or w < best_wall:
            best_wall, best_cpu = w, c
    wall += best_wall
    cpu += best_cpu
    atoms += st[0].count_atom_sites() if st is not None and len(st) else 0
    del st
print(json.dumps({"seconds": wall, "cpuSeconds": cpu, "atoms": atoms, "failed": len(failed), "maxRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
