"""Synthetic scenarios in the real file formats, with the truth they encode.

API (stable; the demo and the training checks of other modules use it)::

    from banet_ops.synthetic import Scenario, write_scenario, synthetic_daily_images, true_burn_dates

    scenario = write_scenario(root, region, start, days, seed=0)   # writes root/archive, root/firms, root/regions
                                                                   # (reburn=True: a late fire over an early scar)
    scenario.archive_url, scenario.firms_url                       # file:// URLs for BANET_ARCHIVE_URL / BANET_FIRMS_URL
    scenario.env()                                                 # the BANET_* variables pointing at them
    scenario.burn_dates                                            # datetime64[D] (rows, cols), NaT = unburned (latest burn)
    scenario.scene.all_burn_dates()                                # (2, rows, cols): first burn, re-burn (NaT = none)
    scenario.truth_image(day)                                      # DailyImage the files encode for that day
    synthetic_daily_images(region, start, days, seed=0)            # the same DailyImages, without files (fast)
    true_burn_dates(region, start, days, seed=0)                   # the truth raster, without files

Fires ignite, spread for a few days and die; on its burn day a cell's NIR drops and its MIR
rises, recovering slowly; burning cells give FIRMS detections with FRP; clouds are bright and
cold; each day has up to one Suomi-NPP and one NOAA-20 day overpass with different sensor
zenith angles, and some days miss part or all of the region.  Deterministic by seed.
"""

from banet_ops.synthetic.scenario import Scenario, synthetic_daily_images, true_burn_dates, truth_image, write_scenario
from banet_ops.synthetic.scene import Scene

__all__ = ["Scenario", "Scene", "synthetic_daily_images", "true_burn_dates", "truth_image", "write_scenario"]
