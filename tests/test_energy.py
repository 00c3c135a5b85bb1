"""Energy: RAPL counters read from a (fake) powercap sysfs tree, wrap-around, NVML, estimates."""

import time

from leeroo_local.hardware import EnergyMeter, Nvml, rapl_domains


def rapl_tree(root, domains=(("intel-rapl:0", 1_000_000),), max_range=2**32):
    for name, value in domains:
        d = root / "class" / "powercap" / name
        d.mkdir(parents=True)
        (d / "energy_uj").write_text(f"{value}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    sub = root / "class" / "powercap" / "intel-rapl:0:0"  # a subdomain: counted in its package
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "energy_uj").write_text("5\n")
    return root


def set_uj(root, name, value):
    (root / "class" / "powercap" / name / "energy_uj").write_text(f"{value}\n")


def test_rapl_packages_are_measured_and_subdomains_ignored(tmp_path):
    root = rapl_tree(tmp_path, (("intel-rapl:0", 1_000_000), ("intel-rapl:1", 50)))
    assert [d.name for d in rapl_domains(root)] == ["intel-rapl:0", "intel-rapl:1"]
    meter = EnergyMeter(root).start()
    set_uj(root, "intel-rapl:0", 3_500_000)
    set_uj(root, "intel-rapl:1", 500_050)
    reading = meter.stop()
    assert reading.method == "measured" and reading.joules == 3.0
    assert reading.source == "rapl:intel-rapl:0,intel-rapl:1"


def test_rapl_counter_wrap_is_handled(tmp_path):
    root = rapl_tree(tmp_path, (("intel-rapl:0", 999_000),), max_range=1_000_000)
    meter = EnergyMeter(root).start()
    set_uj(root, "intel-rapl:0", 1_000)  # wrapped past 1_000_000
    assert meter.stop().joules == 0.002


def test_without_counters_energy_is_estimated_from_cpu_time(tmp_path):
    meter = EnergyMeter(tmp_path, watts_per_core=20.0).start()
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    reading = meter.stop()
    assert reading.method == "estimated" and "20 W/core" in reading.source
    assert 0.5 <= reading.joules <= 20.0


def test_unreadable_counter_file_falls_back_to_the_estimate(tmp_path):
    root = rapl_tree(tmp_path)
    meter = EnergyMeter(root).start()
    (root / "class" / "powercap" / "intel-rapl:0" / "energy_uj").write_text("garbage")
    assert meter.stop().method == "estimated"


class CountingNvml(Nvml):
    """NVML's counter semantics (mJ since driver load) without a GPU: the meter's arithmetic."""

    def __init__(self, readings):
        self.readings, self.handles = list(readings), []

    def energy_mj(self):
        return self.readings.pop(0)


def test_gpu_energy_from_nvml_adds_to_rapl(tmp_path):
    root = rapl_tree(tmp_path)
    meter = EnergyMeter(root, gpu=True, nvml=CountingNvml([10_000, 17_500])).start()
    set_uj(root, "intel-rapl:0", 2_000_000)
    reading = meter.stop()
    assert reading.method == "measured" and reading.joules == 1.0 + 7.5
    assert reading.source == "rapl:intel-rapl:0 + nvml"


def test_gpu_without_readable_nvml_is_labelled_estimated(tmp_path):
    root = rapl_tree(tmp_path)
    meter = EnergyMeter(root, gpu=True, nvml=CountingNvml([None, None])).start()
    set_uj(root, "intel-rapl:0", 2_000_000)
    reading = meter.stop()
    assert reading.method == "estimated" and "not counted" in reading.source


def test_nvml_is_absent_on_a_machine_without_the_library():
    assert Nvml.open("libdefinitely-not-nvml.so") is None
